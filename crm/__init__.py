"""Membership & loyalty CRM for restaurant and hotel chains."""
import logging

from flask import Flask, request, session
from werkzeug.middleware.proxy_fix import ProxyFix

from .core import database  # noqa: F401  (installs the SQLite engine events)


def create_app(config_object="config.Config", **overrides) -> Flask:
    app = Flask(__name__, template_folder="../templates", static_folder="../static",
                instance_relative_config=True)
    app.config.from_object(config_object)
    app.config.update(overrides)
    from .auth import keys
    keys.check(app)  # production refuses to start with a missing or well-known secret
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    _ensure_sqlite_dir(app)
    from .core import requestid
    requestid.install(app)  # first, so even a refused request carries its id
    _init_extensions(app)
    from .core import bounds
    bounds.install(app)  # before the blueprints: their <int:…> ids are bounded
    _register_blueprints(app)
    from .errors import register_error_handlers
    register_error_handlers(app)
    from .cli import register_cli
    register_cli(app)
    logging.basicConfig(level=logging.INFO)
    return app


def _ensure_sqlite_dir(app):
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///"):
        from pathlib import Path
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    if uri.startswith("sqlite"):
        opts = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
        opts.setdefault("connect_args", {})["timeout"] = 30  # busy timeout while another writer commits
        if uri in ("sqlite://", "sqlite:///:memory:"):
            from sqlalchemy.pool import StaticPool
            opts.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = opts
    elif uri.startswith("postgresql"):
        # A database host that drops packets would hold a request until gunicorn's timeout;
        # give up connecting after a few seconds and answer 503 database_unavailable instead.
        opts = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
        # A table locked by a long migration or a stuck statement must not hold a request until
        # gunicorn kills the worker: give up first and answer 503 (SQLSTATE 55P03 / 57014).
        timeouts = (f"-c lock_timeout={app.config['DB_LOCK_TIMEOUT_MS']} "
                    f"-c statement_timeout={app.config['DB_STATEMENT_TIMEOUT_MS']}")
        opts["connect_args"] = {"connect_timeout": app.config["DB_CONNECT_TIMEOUT"], "options": timeouts,
                                **opts.get("connect_args", {})}
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = opts


def _locale():
    """The API and the CLI speak English (integrations rely on codes, operators read logs);
    the staff UI follows the session's choice, Simplified Chinese by default."""
    from flask import current_app, has_request_context
    if not has_request_context() or request.path.startswith("/api/"):
        return "en"
    lang = session.get("lang")
    return lang if lang in current_app.config["LANGUAGES"] else current_app.config["BABEL_DEFAULT_LOCALE"]


def _init_extensions(app):
    from . import models  # noqa: F401  (every table registered before migrate/create_all)
    from .extensions import api, babel, csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def _load(staff_id):
        from .auth import sessions
        return sessions.current_staff(staff_id)  # server-side session check (one query)

    csrf.init_app(app)
    babel.init_app(app, locale_selector=_locale)
    api.init_app(app)

    from .auth.access import enforce_access
    app.before_request(enforce_access)

    from .auth.roles import ROLE_NAMES
    from .catalog.labels import category_name
    from .core.forms import new_form_token
    from .core.money import format_fen

    @app.context_processor
    def _ui_globals():
        from flask_babel import get_locale
        return {"current_locale": str(get_locale()), "request_path": request.path, "role_names": ROLE_NAMES,
                "form_token": new_form_token}

    app.add_template_filter(format_fen, "money")
    app.add_template_filter(category_name, "category")


def _register_blueprints(app):
    from . import docs, health
    from .auth import api as auth_api
    from .auth import staff_views
    from .auth import views as auth_views
    from .bulk import api as bulk_api
    from .bulk import views as bulk_views
    from .campaigns import api as campaigns_api
    from .campaigns import views as marketing_views
    from .cards import api as cards_api
    from .cards import views as cards_views
    from .catalog import api as catalog_api
    from .catalog import views as catalog_views
    from .checkout import api as checkout_api
    from .checkout import views as till_views
    from .corporate import api as corporate_api
    from .corporate import views as corporate_views
    from .coupons import api as coupons_api
    from .coupons import views as coupons_views
    from .dayend import api as dayend_api
    from .dayend import views as dayend_views
    from .extensions import api, csrf
    from .frontdesk import api as frontdesk_api
    from .frontdesk import views as frontdesk_views
    from .members import api as members_api
    from .members import level_views, sms_api
    from .members import views as members_views
    from .notifications import api as notifications_api
    from .notifications import views as notifications_views
    from .points import api as points_api
    from .programme import api as programme_api
    from .programme import views as programme_views
    from .reports import api as reports_api
    from .reports import views as reports_views
    from .selfservice import views as selfservice_views
    from .stays import api as stays_api
    from .stores import api as stores_api
    from .stores import views as stores_views
    from .wallet import api as wallet_api
    from .wallet import views as wallet_views

    for module in (auth_api, stores_api, programme_api, members_api, cards_api, catalog_api, points_api,
                   checkout_api, wallet_api, coupons_api, campaigns_api, reports_api, sms_api, notifications_api):
        api.register_blueprint(module.blp)
        csrf.exempt(module.blp)  # Bearer-token API: no cookies, so no CSRF
    for module in (auth_views, members_views, cards_views, till_views, catalog_views, wallet_views, marketing_views,
                   reports_views, programme_views, staff_views, stores_views, level_views,
                   coupons_views, selfservice_views, notifications_views, health, docs):
        app.register_blueprint(module.bp)
    # bulk work on an audience (issue 16); hotel stays, front desk, corporate accounts, day-end (issue 17)
    for module in (bulk_api, stays_api, frontdesk_api, corporate_api, dayend_api):
        api.register_blueprint(module.blp)
        csrf.exempt(module.blp)
    for module in (bulk_views, frontdesk_views, corporate_views, dayend_views):
        app.register_blueprint(module.bp)
    docs.document_security(api)
