"""stays in the programme (issue 17.1): points and level spend earned by hotel stays

Stays gain the F&B posted to the room and a cancelled flag; `stay_earnings` keeps what each
stay earned; the points ledger gains the `stay` and `stay_undo` entry kinds.

Revision ID: 0026_stay_points
Revises: 0025_kpi_targets

"""
import sqlalchemy as sa
from alembic import op

revision = '0026_stay_points'
down_revision = '0025_kpi_targets'
branch_labels = None
depends_on = None

OLD_POINTS = "kind IN ('earn', 'redeem', 'expire', 'adjust', 'reversal', 'opening', 'transfer')"
NEW_POINTS = ("kind IN ('earn', 'redeem', 'expire', 'adjust', 'reversal', 'opening', 'transfer', 'stay', "
              "'stay_undo')")


def _kinds(check):
    with op.batch_alter_table('points_entries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_points_entries_kind'), type_='check')
        batch_op.create_check_constraint('kind', check)


def upgrade():
    _kinds(NEW_POINTS)
    with op.batch_alter_table('stays', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fb_revenue', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('cancelled', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_check_constraint('fb_amount', 'fb_revenue >= 0')
    op.create_table(
        'stay_earnings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('stay_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=True),
        sa.Column('eligible', sa.Integer(), nullable=False),
        sa.Column('segment', sa.String(length=24), nullable=True),
        sa.Column('points', sa.Integer(), nullable=False),
        sa.Column('entry_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('eligible >= 0 AND points >= 0', name=op.f('ck_stay_earnings_amounts')),
        sa.ForeignKeyConstraint(['entry_id'], ['points_entries.id'],
                                name=op.f('fk_stay_earnings_entry_id_points_entries')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_stay_earnings_member_id_members')),
        sa.ForeignKeyConstraint(['stay_id'], ['stays.id'], name=op.f('fk_stay_earnings_stay_id_stays')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stay_earnings')),
        sa.UniqueConstraint('entry_id', name=op.f('uq_stay_earnings_entry_id')),
        sa.UniqueConstraint('stay_id', name=op.f('uq_stay_earnings_stay_id')),
    )
    with op.batch_alter_table('stay_earnings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stay_earnings_member_id'), ['member_id'], unique=False)


def downgrade():
    with op.batch_alter_table('stay_earnings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stay_earnings_member_id'))
    op.drop_table('stay_earnings')
    with op.batch_alter_table('stays', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_stays_fb_amount'), type_='check')
        batch_op.drop_column('cancelled')
        batch_op.drop_column('fb_revenue')
    _kinds(OLD_POINTS)  # refused while stay entries exist: a ledger is never edited
