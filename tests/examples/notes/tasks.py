from app import Note, app, db


def count_words(note_id):
    with app.app_context():
        note = db.session.get(Note, note_id)
        if note is None:
            return None
        note.word_count = len(note.body.split())
        db.session.commit()
        return note.word_count
