"""no ledger entry is reversed twice

Revision ID: 0009_unique_reversals
Revises: 0008_level_changes

"""
from alembic import op
import sqlalchemy as sa

revision = '0009_unique_reversals'
down_revision = '0008_level_changes'
branch_labels = None
depends_on = None


def upgrade():
    # Before this release six voids of one bill could all succeed; such a database must be
    # corrected by hand (with `flask crm audit` naming the bills) before the index can hold.
    for table in ('points_entries', 'wallet_entries'):
        doubled = op.get_bind().execute(sa.text(
            f'SELECT count(*) FROM (SELECT reverses_id FROM {table} WHERE reverses_id IS NOT NULL '
            f'GROUP BY reverses_id HAVING count(*) > 1) AS d')).scalar()
        if doubled:
            raise RuntimeError(f'{doubled} entries of {table} are reversed more than once (a bill voided twice '
                               'before this release); run `flask crm audit`, correct them, then upgrade again')
    op.create_index('uq_points_entries_reverses_id', 'points_entries', ['reverses_id'], unique=True)
    op.create_index('uq_wallet_entries_reverses_id', 'wallet_entries', ['reverses_id'], unique=True)


def downgrade():
    op.drop_index('uq_wallet_entries_reverses_id', table_name='wallet_entries')
    op.drop_index('uq_points_entries_reverses_id', table_name='points_entries')
