"""What `fab init` can tell about an app by reading its files: the app contract's variables.

Pure and static: files are read and Python is parsed with `ast`, but nothing of the app is
imported or run (importing would need its dependencies, and would run its module-level code
on the operator's machine). Every guess carries the evidence it rests on, so the operator can
check it; a guess the files do not settle says so ("could not tell: check this").
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

UNSURE = "could not tell: check this"
# Directories that hold no code of the app's own (or code the running app never imports).
SKIPPED_DIRS = {".git", ".hg", ".venv", "venv", "env", ".env", ".tox", ".nox", "node_modules",
                "__pycache__", "build", "dist", "site-packages", "tests", "test", "docs",
                ".mypy_cache", ".ruff_cache", ".pytest_cache", "instance"}
MAX_FILES = 2000
NAME = re.compile(r"[a-z][a-z0-9_]*")
ENTRY_MODULES = ("wsgi", "app", "application", "main", "server")
FACTORY_NAMES = ("create_app", "make_app")
HEALTH_PATHS = ("/healthz", "/health", "/livez")
READY_PATHS = ("/readyz", "/ready")
ROUTE = re.compile(r"""@\s*[\w.]+\.(?:route|get)\(\s*['"](/[^'"]*)['"]""")
ENV_READ = re.compile(
    r"""(?:environ\.get|environ\.setdefault|getenv|environ\[|env\.str|env\.get)\(?\s*"""
    r"""['"]([A-Z][A-Z0-9_]*)['"]""")
CONFIG_READ = re.compile(r"""config(?:\.get\(|\[)\s*['"]([A-Z][A-Z0-9_]*)['"]""")
FLEETAPP_VAR = re.compile(r"\bFLEETAPP_[A-Z0-9_]+")
INIT_COMMAND = re.compile(
    r"""@\s*[\w.]*command\(\s*['"]((?:init|create|setup|reset)[-_]?"""
    r"""(?:db|database|tables|schema))['"]""")
SQLITE_URL = re.compile(r"""['"]sqlite:""")
DROPS = re.compile(r"drop_all\(|DROP\s+TABLE", re.IGNORECASE)
CREATES_IDEMPOTENT = re.compile(r"create_all\(|CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS", re.IGNORECASE)
BEAT = re.compile(r"beat_schedule|add_periodic_task|periodic_task|crontab\(")
PINNED_LINE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*==")
# Variables of the process, not configuration the kit's env file provides.
NOT_CONFIG = {"FLASK_APP", "FLASK_ENV", "FLASK_DEBUG", "FLASK_RUN_HOST", "FLASK_RUN_PORT",
              "PATH", "HOME", "USER", "PORT", "PYTHONPATH", "TZ", "LANG"}
# Config keys Flask or its usual extensions define: not the app's own settings.
FLASK_KEYS = re.compile(r"(SQLALCHEMY_|SESSION_|JSON_|TEMPLATES_|EXPLAIN_|PREFERRED_|MAX_|"
                        r"SEND_FILE_|SERVER_NAME$|APPLICATION_ROOT$|TESTING$|DEBUG$|PROPAGATE_|"
                        r"TRAP_|USE_X_|PERMANENT_|MIGRATIONS?_)")
CELERY_WORKER_ONLY = "{{ celery_programs | selectattr('name', 'equalto', 'worker') | list }}"
BROKER = "{{ app_broker_url }}"
RQ_PROGRAMS = [{"name": "rq-worker", "group": "workers", "command": "rq worker"}]


class ScanError(ValueError):
    """The directory holds no Python app the kit could deploy; the message says what was seen."""


@dataclass(frozen=True)
class Guess:
    """One inventory variable: its value and the evidence for it (or `UNSURE`)."""

    name: str
    value: Any
    why: str
    sure: bool = True


@dataclass
class Scan:
    app_dir: Path
    guesses: dict[str, Guess] = field(default_factory=dict)
    # Said in the printed summary and in app.yml: what the operator must act on.
    notices: list[str] = field(default_factory=list)
    # Environment variables the app reads that the chosen preset does not set.
    unmapped: list[str] = field(default_factory=list)

    def add(self, name: str, value: Any, why: str, sure: bool = True) -> None:
        self.guesses[name] = Guess(name, value, why if sure else f"{UNSURE}: {why}", sure)

    def value(self, name: str) -> Any:
        return self.guesses[name].value


@dataclass
class _Module:
    path: Path        # relative to the app dir
    dotted: str       # import name (src/ layout: without src.)
    text: str
    tree: ast.Module

    @property
    def folder(self) -> PurePosixPath:
        return PurePosixPath(self.path.parent.as_posix())


def app_name(app_dir: Path, name: str | None = None) -> str:
    """A valid app_name (`[a-z][a-z0-9_]*`): the one given, else from the directory's name."""
    raw = name if name is not None else app_dir.resolve().name
    cleaned = re.sub(r"[^a-z0-9_]+", "_", raw.lower()).strip("_")
    cleaned = re.sub(r"^[^a-z]+", "", cleaned)[:31]
    if not NAME.fullmatch(cleaned):
        raise ScanError(f"cannot make an app name of {raw!r}: give --name (a lowercase letter, "
                        "then letters, digits or '_')")
    return cleaned


def _python_files(app_dir: Path) -> list[Path]:
    found: list[Path] = []
    for path in sorted(app_dir.rglob("*.py")):
        rel = path.relative_to(app_dir)
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        # Migration scripts describe the schema, not the app.
        if "migrations" in rel.parts or "alembic" in rel.parts:
            continue
        found.append(rel)
        if len(found) >= MAX_FILES:
            break
    return found


def _dotted(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules(app_dir: Path) -> list[_Module]:
    modules = []
    for rel in _python_files(app_dir):
        text = (app_dir / rel).read_text(errors="replace")
        try:
            tree = ast.parse(text, filename=str(rel))
        except SyntaxError:
            continue
        modules.append(_Module(rel, _dotted(rel), text, tree))
    return modules


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return ""


def _module_level_calls(module: _Module, names: Iterable[str]) -> list[tuple[str, ast.Call]]:
    """(variable, call) for each `variable = Name(...)` at module level calling one of names."""
    wanted, found = set(names), []
    for node in module.tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and _call_name(node.value) in wanted:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [(t.id, node.value) for t in targets if isinstance(t, ast.Name)]
    return found


def _annotated(module: _Module, type_name: str) -> list[tuple[str, ast.AST]]:
    """(variable, value) for each `variable: type_name = ...` at module level."""
    return [(n.target.id, n.value) for n in module.tree.body
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
            and isinstance(n.annotation, ast.Name) and n.annotation.id == type_name]


def _factories(module: _Module) -> list[str]:
    return [n.name for n in module.tree.body
            if isinstance(n, ast.FunctionDef) and n.name in FACTORY_NAMES]


def _rank(module: _Module) -> tuple[int, int, str]:
    """Common entry points first (wsgi.py, app.py, a package's __init__), then shallow ones."""
    stem = module.path.stem
    depth = len(module.dotted.split("."))
    if stem in ENTRY_MODULES:
        kind = ENTRY_MODULES.index(stem)
    elif stem == "__init__":
        kind = len(ENTRY_MODULES)
    else:
        kind = len(ENTRY_MODULES) + 1
    return depth, kind, module.dotted


@dataclass
class _Target:
    wsgi: str
    module: _Module
    why: str
    flask_call: ast.Call | None = None


def _flaskenv_target(app_dir: Path) -> tuple[str, str] | None:
    for name in (".flaskenv", ".env"):
        path = app_dir / name
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                match = re.fullmatch(r"\s*(?:export\s+)?FLASK_APP\s*=\s*['\"]?([^'\"#\s]+)", line)
                if match:
                    return match[1], f"FLASK_APP={match[1]} in {name}"
    return None


def _flask_call_in(module: _Module) -> ast.Call | None:
    return next((node for node in ast.walk(module.tree) if _call_name(node) == "Flask"), None)


def _find_target(app_dir: Path, modules: list[_Module]) -> _Target | None:
    by_dotted = {m.dotted: m for m in modules}
    ranked = sorted(modules, key=_rank)
    from_env = _flaskenv_target(app_dir)
    if from_env:
        value, why = from_env
        dotted = value.split(":", 1)[0]
        module = by_dotted.get(dotted) or by_dotted.get(dotted.removesuffix(".py"))
        if module is not None:
            if ":" not in value:
                # `flask --app pkg` finds `app` or `create_app`; gunicorn needs the name.
                apps = _module_level_calls(module, ["Flask", *FACTORY_NAMES])
                factories = _factories(module)
                if apps:
                    value = f"{module.dotted}:{apps[0][0]}"
                elif factories:
                    value = f"{module.dotted}:{factories[0]}()"
            return _Target(value, module, why, _flask_call_in(module))
    for module in ranked:
        for variable, call in _module_level_calls(module, ["Flask"]):
            return _Target(f"{module.dotted}:{variable}", module,
                           f"{module.path}: module-level `{variable} = Flask(...)`", call)
    # A wsgi.py exists to be the entry point: `app = create_app()` there wins over the factory.
    for module in ranked:
        if module.path.stem != "wsgi":
            continue
        for variable, _call in _module_level_calls(module, FACTORY_NAMES):
            factory = _factory_module(by_dotted, module)
            return _Target(f"{module.dotted}:{variable}", factory or module,
                           f"{module.path}: module-level `{variable} = create_app()`",
                           _flask_call_in(factory) if factory else None)
    for module in ranked:
        factories = _factories(module)
        if factories:
            return _Target(f"{module.dotted}:{factories[0]}()", module,
                           f"{module.path}: factory `def {factories[0]}(`",
                           _flask_call_in(module))
    return None


def _factory_module(by_dotted: Mapping[str, _Module], module: _Module) -> _Module | None:
    """The module a `from X import create_app` in `module` names, when it was parsed."""
    for node in module.tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and any(a.name in FACTORY_NAMES for a in node.names):
            return by_dotted.get(node.module)
    return None


def flask_app_option(wsgi: str) -> str:
    """What `flask --app` gets: `module:app` as it is; for a factory, the module alone.

    Flask finds `create_app`/`make_app` in a module by itself, and the module alone needs no
    shell quoting (the migration command runs under `sh -c`), unlike `pkg:create_app()`.
    """
    module, _, attribute = wsgi.partition(":")
    return module if attribute.endswith(")") else wsgi


def _requirements(app_dir: Path) -> tuple[str, str, bool]:
    plain = app_dir / "requirements.txt"
    if plain.is_file():
        return ("requirements.txt", *_pinning("requirements.txt", plain))
    others = sorted([*app_dir.glob("requirements*.txt"), *app_dir.glob("requirements/*.txt")])
    pinned = [p for p in others if _all_pinned(p)]
    # Production pins before development or test ones.
    pinned.sort(key=lambda p: (bool(re.search(r"dev|test|lint|doc", p.name)), str(p)))
    if pinned:
        rel = pinned[0].relative_to(app_dir).as_posix()
        return rel, f"{rel}: every line pinned with '==' (no requirements.txt)", True
    for lock in ("pylock.toml", "uv.lock", "poetry.lock"):
        if (app_dir / lock).is_file():
            return lock, f"{lock}: a lock file (no pinned requirements*.txt)", True
    if (app_dir / "pyproject.toml").is_file():
        deps = _pyproject_dependencies(app_dir / "pyproject.toml")
        loose = [d for d in deps if "==" not in d]
        if loose:
            return ("pyproject.toml", "pyproject.toml [project] dependencies, the only "
                    f"dependency list, but {len(loose)} of {len(deps)} are not pinned with '==' "
                    f"({loose[0]!r}): the kit refuses them", False)
        return ("pyproject.toml", f"pyproject.toml: [project] dependencies, {len(deps)} "
                "packages all pinned with '==' (no requirements file or lock file)", True)
    return "requirements.txt", "no requirements file, lock file or pyproject.toml", False


def _pinning(rel: str, path: Path) -> tuple[str, bool]:
    if _all_pinned(path):
        return f"{rel}: every line pinned with '=='", True
    return f"{rel} has lines not pinned with '==' (the kit refuses them)", False


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def _all_pinned(path: Path) -> bool:
    lines = _requirement_lines(path)
    return bool(lines) and all(PINNED_LINE.match(line) for line in lines)


def _pyproject_dependencies(path: Path) -> list[str]:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError:
        return []
    return [str(d) for d in (data.get("project") or {}).get("dependencies") or []]


def _dependency_names(app_dir: Path) -> set[str]:
    """Lower-case names of the packages the app depends on, from whatever lists them."""
    specs: list[str] = []
    for path in [*app_dir.glob("requirements*.txt"), *app_dir.glob("requirements/*.txt")]:
        specs += _requirement_lines(path)
    if (app_dir / "pyproject.toml").is_file():
        specs += _pyproject_dependencies(app_dir / "pyproject.toml")
    return {re.split(r"[\s\[<>=!~;]", s, maxsplit=1)[0].lower().replace("_", "-")
            for s in specs}


def _migrations(scan: Scan, app_dir: Path, modules: list[_Module], target: str) -> None:
    code = "\n".join(m.text for m in modules)
    if (app_dir / "alembic.ini").is_file():
        scan.add("app_migrate_command", "alembic upgrade head", "alembic.ini in the app directory")
        scan.add("app_migrate_status_command", "alembic current", "alembic.ini: `alembic current`")
        scan.add("app_migrate_once", False, "alembic revisions can run on every deploy")
        return
    script_dirs = sorted(p.parent for p in app_dir.rglob("migrations/env.py")
                         if (p.parent / "alembic.ini").is_file()
                         and not set(p.relative_to(app_dir).parts) & SKIPPED_DIRS)
    if script_dirs and re.search(r"\b(from|import)\s+flask_migrate\b", code):
        where = script_dirs[0].relative_to(app_dir).as_posix()
        option = ""
        why = f"{where}/alembic.ini and env.py, and flask_migrate imported"
        if where != "migrations":
            if re.search(r"(Migrate|init_app)\([^)]*directory\s*=", code):
                why += f"; the app passes Migrate's directory= for {where}/"
            else:
                option = f" --directory {where}"
                why += f"; not at ./migrations, so --directory {where}"
        scan.add("app_migrate_command", f"flask --app {target} db upgrade{option}",
                 f"Flask-Migrate: {why}")
        scan.add("app_migrate_status_command", f"flask --app {target} db current{option}",
                 "Flask-Migrate: `flask db current` prints the revision")
        scan.add("app_migrate_once", False, "alembic revisions can run on every deploy")
        return
    for module in modules:
        match = INIT_COMMAND.search(module.text)
        if not match:
            continue
        command = match[1]
        # The SQL it may run lives beside it (the Flask tutorial's schema.sql).
        body = module.text + "".join(p.read_text(errors="replace")
                                     for p in (app_dir / module.path.parent).glob("*.sql"))
        where = f"{module.path}: click command {command!r}"
        scan.add("app_migrate_command", f"flask --app {target} {command}", where)
        scan.add("app_migrate_status_command", "", "an init command reports no schema revision")
        if DROPS.search(body):
            scan.add("app_migrate_once", True, f"{where} drops tables (drop_all/DROP TABLE): "
                     "a second run would delete the data, so only the first deploy runs it")
        elif CREATES_IDEMPOTENT.search(body):
            scan.add("app_migrate_once", False, f"{where} looks idempotent (create_all/CREATE "
                     "TABLE IF NOT EXISTS), so every deploy may run it")
        else:
            scan.add("app_migrate_once", True, f"{where}: neither create_all nor DROP TABLE "
                     "found; run once, the safe side", sure=False)
        return
    scan.add("app_migrate_command", "", "no alembic.ini, Flask-Migrate scripts or init-db "
             "command found")
    scan.add("app_migrate_status_command", "", "no migration tool found")


def _workers(scan: Scan, app_dir: Path, modules: list[_Module]) -> None:
    code = "\n".join(m.text for m in modules)
    for module in sorted(modules, key=_rank):
        found = _module_level_calls(module, ["Celery"]) + _annotated(module, "Celery")
        if not found:
            continue
        variable = found[0][0]
        value = f"{module.dotted}:{variable}"
        scan.add("app_celery", value, f"{module.path}: module-level Celery app `{variable}`")
        beat = BEAT.search(code)
        if beat:
            scan.add("app_programs", None, f"a Celery worker and beat (the default): "
                     f"{beat[0].rstrip('(')} found")
        else:
            scan.add("app_programs", CELERY_WORKER_ONLY, "Celery worker only: no beat_schedule "
                     "or periodic task found")
        return
    uses_rq = re.search(r"^\s*(from\s+rq\b|import\s+rq\b)", code, re.MULTILINE)
    if uses_rq or "rq" in _dependency_names(app_dir):
        evidence = "`" + uses_rq[0].strip() + "`" if uses_rq else "rq in the requirements"
        scan.add("app_celery", "", "no Celery app; an RQ app instead")
        scan.add("app_programs", RQ_PROGRAMS, f"RQ: {evidence}; `rq worker` on the workers")
        extra = {"RQ_REDIS_URL": BROKER}
        why = "`rq worker` reads its Redis from RQ_REDIS_URL: the broker DB (no eviction)"
        # The app enqueues on the Redis it reads itself; the presets point that at the cache
        # DB, where the worker would never look (and eviction could drop queued jobs).
        app_redis = sorted(set(ENV_READ.findall(code)) & {"REDIS_URL", "FLASK_REDIS_URL"})
        if app_redis:
            extra.update(dict.fromkeys(app_redis, BROKER))
            why += (f"; {', '.join(app_redis)} too, which the app enqueues on, so both name "
                    "the same Redis")
        scan.add("app_extra_env", extra, why)
        return
    scan.add("app_celery", "", "no `Celery(` object and no rq found")
    scan.add("app_programs", [], "no background worker found")


def _static(scan: Scan, app_dir: Path, target: _Target | None) -> None:
    if target is None:
        scan.add("app_static_dir", "", "no Flask app found", sure=False)
        return
    folder = target.module.folder
    name = "static"
    call = target.flask_call
    for keyword in call.keywords if call is not None else []:
        if keyword.arg == "static_folder" and isinstance(keyword.value, ast.Constant):
            name = str(keyword.value.value)
    path = (folder / name) if str(folder) != "." else PurePosixPath(name)
    if (app_dir / path).is_dir():
        scan.add("app_static_dir", path.as_posix(), f"{path}/ next to {target.module.path}")
    else:
        scan.add("app_static_dir", "", f"no {path}/ next to {target.module.path}: set it to the "
                 "directory of files to publish", sure=False)


def _health(scan: Scan, modules: list[_Module]) -> None:
    routes: dict[str, Path] = {}
    for module in modules:
        for path in ROUTE.findall(module.text):
            routes.setdefault(path.rstrip("/") or "/", module.path)
    health = next((p for p in HEALTH_PATHS if p in routes), None)
    ready = next((p for p in READY_PATHS if p in routes), None)
    if health:
        scan.add("app_health_path", health, f"route {health} in {routes[health]}")
    elif ready:
        scan.add("app_health_path", ready, f"no liveness route; readiness {ready} in "
                 f"{routes[ready]}")
    else:
        scan.add("app_health_path", "/", "no /healthz, /health or /livez route: the home page "
                 "stands in (it may need the database)", sure=False)
    if ready:
        scan.add("app_ready_path", ready, f"route {ready} in {routes[ready]}")
    elif health:
        scan.add("app_ready_path", health, f"no /readyz or /ready route: {health} stands in")
    else:
        scan.add("app_ready_path", "/", "no readiness route: the home page stands in",
                 sure=False)
    if "/version" in routes:
        scan.add("app_version_path", "/version", f"route /version in {routes['/version']}")
    else:
        scan.add("app_version_path", "", "no /version route")


def preset_variables(defaults: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Each configuration preset's variable names, as the app role's app_env_presets has them."""
    declared = defaults.get("app_env_presets")
    if not isinstance(declared, Mapping) or not declared:
        raise ScanError("roles/app/defaults/main.yml declares no app_env_presets")
    return {name: tuple(mapping or ()) for name, mapping in declared.items()}


def _env_preset(scan: Scan, modules: list[_Module], defaults: Mapping[str, Any]) -> None:
    presets = preset_variables(defaults)
    code = "\n".join(m.text for m in modules)
    read = {name for name in ENV_READ.findall(code) if name not in NOT_CONFIG}
    fleetapp = set(FLEETAPP_VAR.findall(code))
    prefixed = "from_prefixed_env(" in code
    common = set(presets.get("common", ()))
    if fleetapp:
        scan.add("app_env_preset", "fleetapp", f"reads {', '.join(sorted(fleetapp)[:3])}, ...")
        wanted = read | fleetapp
        chosen = "fleetapp"
    elif prefixed:
        keys = {k for k in CONFIG_READ.findall(code) if not FLASK_KEYS.match(k)}
        keys |= set(re.findall(r"\b([A-Z][A-Z0-9_]+)\s*=", _from_mapping_args(code)))
        wanted = {f"FLASK_{k}" for k in keys} | {n for n in read if n.startswith("FLASK_")}
        shown = ", ".join(sorted(wanted)) or "no FLASK_* key seen"
        scan.add("app_env_preset", "flask", f"app.config.from_prefixed_env() reads FLASK_* "
                 f"variables ({shown})")
        chosen = "flask"
    elif read & common:
        scan.add("app_env_preset", "common", "reads " + ", ".join(sorted(read & common))
                 + " from the environment")
        wanted, chosen = read, "common"
    else:
        scan.add("app_env_preset", "common", "no known configuration variable read",
                 sure=False)
        wanted, chosen = read, "common"
    covered = set(presets.get(chosen, ()))
    scan.unmapped = sorted(n for n in wanted - covered if n != "RQ_REDIS_URL")


def _from_mapping_args(code: str) -> str:
    match = re.search(r"from_mapping\((.*?)\)\s*\n", code, re.DOTALL)
    return match[1] if match else ""


def _sqlite(scan: Scan, modules: list[_Module]) -> None:
    for module in modules:
        if SQLITE_URL.search(module.text):
            scan.notices.append(
                f"{module.path}: the default database URL is SQLite. The kit refuses SQLite on "
                "a fleet of more than one host: set the database URL variable (the preset's "
                "DATABASE_URL or FLASK_DATABASE_URL / FLASK_SQLALCHEMY_DATABASE_URI) to "
                "MariaDB, as app_env_preset does.")
            return


def _shared_paths(scan: Scan, modules: list[_Module], target: _Target | None) -> None:
    for module in modules:
        if "instance_relative_config=True" in module.text or "instance_path" in module.text:
            base = target.module.folder if target is not None else PurePosixPath(".")
            # Flask puts the instance folder next to the package (or the module) in a tree.
            if target is not None and target.module.path.name == "__init__.py":
                base = base.parent
            path = (base / "instance").as_posix()
            scan.add("app_shared_paths", [path], f"{module.path} uses the instance folder "
                     "(instance_relative_config / app.instance_path)")
            return
    scan.add("app_shared_paths", [], "no instance folder used")


def scan(app_dir: Path, name: str | None = None,
         defaults: Mapping[str, Any] | None = None) -> Scan:
    """Inspect `app_dir`; raise ScanError when it holds no Python app."""
    if defaults is None:
        from fleet.inventory import role_defaults

        defaults = role_defaults()
    app_dir = app_dir.resolve()
    if not app_dir.is_dir():
        raise ScanError(f"{app_dir} is not a directory")
    modules = _modules(app_dir)
    if not modules:
        raise ScanError(f"{app_dir} has no Python app: no .py file outside tests, virtualenvs "
                        "and migrations")
    target = _find_target(app_dir, modules)
    if target is None:
        raise ScanError(f"{app_dir} has no Python app the kit can serve: no `app = Flask(...)`, "
                        f"no `def create_app(` and no FLASK_APP in .flaskenv "
                        f"({len(modules)} Python files read)")
    result = Scan(app_dir)
    result.add("app_name", app_name(app_dir, name),
               f"--name {name}" if name is not None else f"the directory's name ({app_dir.name})")
    rel, why, sure = _requirements(app_dir)
    result.add("app_requirements", rel, why, sure)
    result.add("app_wsgi", target.wsgi, target.why)
    _migrations(result, app_dir, modules, flask_app_option(target.wsgi))
    _workers(result, app_dir, modules)
    _static(result, app_dir, target)
    _health(result, modules)
    _env_preset(result, modules, defaults)
    _shared_paths(result, modules, target)
    _sqlite(result, modules)
    return result
