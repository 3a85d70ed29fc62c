"""import jobs keep the encoding their file was read as (UTF-8 or GB18030/GBK)

Revision ID: 0013_import_encoding
Revises: 0012_scheduler_leases

"""
from alembic import op
import sqlalchemy as sa

revision = '0013_import_encoding'
down_revision = '0012_scheduler_leases'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('encoding', sa.String(length=16), nullable=False, server_default='utf-8'))


def downgrade():
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.drop_column('encoding')
