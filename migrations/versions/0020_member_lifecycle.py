"""member lifecycle foundations (issue 16): opening and transfer ledger entries, merged and
anonymised members, legacy cards, member imports

Revision ID: 0020_member_lifecycle
Revises: 0019_service_notifications

"""
import sqlalchemy as sa
from alembic import op

revision = '0020_member_lifecycle'
down_revision = '0019_service_notifications'
branch_labels = None
depends_on = None

OLD_POINTS = "kind IN ('earn', 'redeem', 'expire', 'adjust', 'reversal')"
NEW_POINTS = "kind IN ('earn', 'redeem', 'expire', 'adjust', 'reversal', 'opening', 'transfer')"
OLD_WALLET = "kind IN ('topup', 'spend', 'refund', 'reversal')"
NEW_WALLET = "kind IN ('topup', 'spend', 'refund', 'reversal', 'opening', 'transfer')"
OLD_IMPORTS = "kind IN ('checks', 'stays')"
NEW_IMPORTS = "kind IN ('checks', 'stays', 'members')"


def _kinds(table, check):
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f(f'ck_{table}_kind'), type_='check')
        batch_op.create_check_constraint('kind', check)


def upgrade():
    _kinds('points_entries', NEW_POINTS)
    _kinds('wallet_entries', NEW_WALLET)
    _kinds('import_jobs', NEW_IMPORTS)
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('merged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('anonymised_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_members_merged_into_id_members'), 'members',
                                    ['merged_into_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_members_merged_into_id'), ['merged_into_id'], unique=False)
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legacy', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_column('legacy')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_members_merged_into_id'))
        batch_op.drop_constraint(batch_op.f('fk_members_merged_into_id_members'), type_='foreignkey')
        batch_op.drop_column('anonymised_at')
        batch_op.drop_column('merged_at')
        batch_op.drop_column('merged_into_id')
    _kinds('import_jobs', OLD_IMPORTS)
    _kinds('wallet_entries', OLD_WALLET)
    _kinds('points_entries', OLD_POINTS)
