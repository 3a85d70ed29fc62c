"""`flask --app wsgi crm …` commands."""
import click
from flask import Flask
from flask.cli import AppGroup

from .core.actor import Actor
from .errors import DomainError
from .extensions import db

crm = AppGroup("crm", help="Membership CRM commands.")


@crm.command("create-staff")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["admin", "manager", "front_desk", "cashier", "marketing"]))
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", default="")
@click.option("--store", "store_code", default=None, help="Home store code.")
def create_staff(username, role, password, name, store_code):
    """Create a staff account."""
    from .auth import service
    from .stores import service as stores
    try:
        store_id = stores.get_by_code(store_code).id if store_code else None
        staff = service.create_staff(Actor.system("cli"), username=username, password=password,
                                     role=role, name=name, store_id=store_id)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    click.echo(f"Created {staff.role} '{staff.username}'.")


@crm.command("demo")
@click.option("--members", default=300, show_default=True, help="How many demo members.")
@click.option("--history-days", default=365, show_default=True, help="Days of past bills to make up.")
def demo(members, history_days):
    """Load a demo chain: 2 restaurants, 1 hotel, staff of every role, catalogue, members with
    cards and a year of bills with points earned, redeemed and expired."""
    from .demo import load_demo
    created = load_demo(member_count=members, history_days=history_days)
    if created:
        click.echo(f"Demo data loaded ({members} members).")
    else:
        click.echo("Demo data already present; nothing changed.")


@crm.command("prune-idempotency-keys")
def prune_idempotency_keys():
    """Delete idempotency keys older than IDEMPOTENCY_KEY_HOURS (at least 24 h)."""
    from .core.idempotency import prune
    removed = prune()
    db.session.commit()
    click.echo(f"Removed {removed} expired keys.")


@crm.command("pins")
def pins_pending():
    """Count payment PINs not yet under the current PIN_PEPPER (an old pepper or the former
    scrypt hash); they move on their next successful use. Remove an old pepper at 0."""
    from .wallet.service import pins_pending_rehash
    click.echo(f"{pins_pending_rehash()} PINs not yet under the current PIN_PEPPER.")


@crm.command("refresh-caches")
def refresh_caches():
    """Make every worker re-read its cached reference data (tokens, stores, dishes,
    promotions, levels, rules) on its next request: after changing those tables in raw SQL."""
    from .core import refcache
    refcache.bump_all()
    db.session.commit()
    click.echo("Every worker re-reads its reference data on its next request.")


@crm.command("audit")
def audit_ledgers():
    """Check every balance against its ledger and every void against its reversals; exit 1
    naming each mismatch."""
    from .checkout import service as checkout
    from .coupons import service as coupons
    from .members import referrals
    from .points import service as points
    from .stays import service as stays
    from .wallet import service as wallet
    problems = (points.audit_mismatches() + wallet.audit_mismatches() + coupons.audit_mismatches()
                + checkout.audit_mismatches() + referrals.audit_mismatches() + stays.audit_mismatches())
    for problem in problems:
        click.echo(f"MISMATCH {problem}", err=True)
    if problems:
        raise SystemExit(1)
    click.echo("All ledgers balance.")


@crm.command("expire-points")
def expire_points():
    """Expire every points lot past its expiry date (safe to run again: expires nothing more)."""
    from .points import service as points
    accounts, expired = points.expire_all(Actor.system("expire-points"))
    db.session.commit()
    click.echo(f"Expired {expired} points on {accounts} accounts.")


@crm.command("anonymise-inactive")
@click.option("--dry-run", is_flag=True, help="Only count the members who would be anonymised.")
@click.option("--years", type=click.IntRange(1, 100), default=None,
              help="Inactive for this many years (default: PIPL_RETENTION_YEARS).")
def anonymise_inactive(dry_run, years):
    """PIPL retention: anonymise members with no bill, stay, top-up or phone-card link for
    PIPL_RETENTION_YEARS years and no stored value (0: off). Points are forfeited by ledger
    entries; running it again changes nothing more."""
    from .members import pipl
    result = pipl.anonymise_inactive(years, dry_run=dry_run)
    if result.get("off"):
        click.echo("Retention is off (PIPL_RETENTION_YEARS=0); nothing done.")
    elif dry_run:
        click.echo(f"Would anonymise {result['inactive']} members inactive since {result['cutoff']:%Y-%m-%d}.")
    else:
        click.echo(f"Anonymised {result['anonymised']} members inactive since {result['cutoff']:%Y-%m-%d}.")


@crm.command("review-levels")
@click.option("--year", type=int, default=None, help="Review year (default: this year in the chain's time zone).")
def review_levels(year):
    """Yearly level review: move members whose spend or top-ups over the level window no
    longer reach their level down to the level they do reach, record why and put a notice
    in the outbox. The scheduler runs it on 1 January; running it again changes nothing."""
    from .core.timeutil import default_tz_name, zone
    from .members import levels
    try:
        result = levels.review_levels(Actor.system("review-levels"), year)
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    as_of = f"{result['as_of'].astimezone(zone()):%Y-%m-%d %H:%M} {default_tz_name()}"
    click.echo(f"Level review {result['year']} (as of {as_of}): members reviewed: {result['reviewed']}, "
               f"moved down: {result['moved_down']}.")


@crm.command("scheduler")
@click.option("--once", is_flag=True, help="Run one tick (fan out due campaigns, send what is queued) and exit.")
def scheduler(once):
    """Run scheduled greetings, campaigns, points expiry and the yearly level review. Start
    one on each of one or two hosts: one leads by a lease of SCHEDULER_LEASE_SECONDS, the
    others stand by and take over; database outages are waited out, never fatal."""
    from flask import current_app

    from .campaigns.jobs import run_scheduler
    run_scheduler(current_app._get_current_object(), once=once)


def register_cli(app: Flask):
    app.cli.add_command(crm)
