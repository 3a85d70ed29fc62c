"""cashier day-end (issue 17.4): who checked a store's day

Revision ID: 0029_day_end
Revises: 0028_company_accounts

"""
import sqlalchemy as sa
from alembic import op

revision = '0029_day_end'
down_revision = '0028_company_accounts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('day_end_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('checked_by', sa.Integer(), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('totals', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['checked_by'], ['staff.id'], name=op.f('fk_day_end_checks_checked_by_staff')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_day_end_checks_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_day_end_checks'))
    )
    op.create_index('ix_day_end_checks_store_day', 'day_end_checks', ['store_id', 'day'], unique=False)


def downgrade():
    op.drop_index('ix_day_end_checks_store_day', table_name='day_end_checks')
    op.drop_table('day_end_checks')
