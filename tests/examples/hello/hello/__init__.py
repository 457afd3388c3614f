import os

from flask import Flask

from . import db, views


def create_app(test_config=None):
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY="dev",
        DATABASE_URL="sqlite:///" + os.path.join(app.instance_path, "hello.sqlite"),
    )
    if test_config is None:
        # FLASK_SECRET_KEY, FLASK_DATABASE_URL, ... override the defaults above.
        app.config.from_prefixed_env()
    else:
        app.config.from_mapping(test_config)

    try:
        os.makedirs(app.instance_path)
    except OSError:
        pass

    db.init_app(app)
    app.register_blueprint(views.bp)
    return app
