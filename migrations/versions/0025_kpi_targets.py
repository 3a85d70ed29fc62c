"""kpi targets (issue 17.6): monthly targets per store for the restaurant member KPIs

Revision ID: 0025_kpi_targets
Revises: 0024_bulk_jobs

"""
import sqlalchemy as sa
from alembic import op

revision = '0025_kpi_targets'
down_revision = '0024_bulk_jobs'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('kpi_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('new_members', sa.Integer(), nullable=True),
    sa.Column('stored_value_growth', sa.Integer(), nullable=True),
    sa.Column('card_issue_rate', sa.Integer(), nullable=True),
    sa.Column('member_share', sa.Integer(), nullable=True),
    sa.Column('spend_per_head', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('month BETWEEN 1 AND 12', name=op.f('ck_kpi_targets_month')),
    sa.CheckConstraint('new_members >= 0 AND stored_value_growth >= 0 AND spend_per_head >= 0',
                       name=op.f('ck_kpi_targets_amounts')),
    sa.CheckConstraint('card_issue_rate BETWEEN 0 AND 10000 AND member_share BETWEEN 0 AND 10000',
                       name=op.f('ck_kpi_targets_rates')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_kpi_targets_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kpi_targets')),
    sa.UniqueConstraint('store_id', 'year', 'month', name=op.f('uq_kpi_targets_store_month'))
    )


def downgrade():
    op.drop_table('kpi_targets')
