"""member imports (issue 16): a dry run of an import checks every row and saves nothing

Revision ID: 0021_member_imports
Revises: 0020_member_lifecycle

"""
import sqlalchemy as sa
from alembic import op

revision = '0021_member_imports'
down_revision = '0020_member_lifecycle'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dry_run', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.drop_column('dry_run')
