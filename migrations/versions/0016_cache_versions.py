"""cache_versions: one version per kind of reference data cached in each worker (core/refcache.py)

Revision ID: 0016_cache_versions
Revises: 0015_campaign_paused

"""
import sqlalchemy as sa
from alembic import op

revision = '0016_cache_versions'
down_revision = '0015_campaign_paused'
branch_labels = None
depends_on = None

NAMESPACES = ("auth", "stores", "catalogue", "promotions", "levels", "programme")


def upgrade():
    table = op.create_table(
        'cache_versions',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_cache_versions')),
    )
    op.bulk_insert(table, [{"name": name, "version": 0} for name in NAMESPACES])


def downgrade():
    op.drop_table('cache_versions')
