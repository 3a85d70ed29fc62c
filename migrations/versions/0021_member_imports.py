"""member imports (issue 16): a dry run of an import checks every row and saves nothing; an
imported member's level is recorded as a level change of reason 'import'

Revision ID: 0021_member_imports
Revises: 0020_member_lifecycle

"""
import sqlalchemy as sa
from alembic import op

revision = '0021_member_imports'
down_revision = '0020_member_lifecycle'
branch_labels = None
depends_on = None


OLD_REASONS = "reason IN ('spend', 'topup', 'review', 'manual')"
NEW_REASONS = "reason IN ('spend', 'topup', 'review', 'manual', 'import')"


def _reasons(check):
    with op.batch_alter_table('member_level_changes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_member_level_changes_reason'), type_='check')
        batch_op.create_check_constraint('reason', check)


def upgrade():
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dry_run', sa.Boolean(), nullable=False, server_default=sa.false()))
    _reasons(NEW_REASONS)


def downgrade():
    op.execute("UPDATE member_level_changes SET reason = 'manual' WHERE reason = 'import'")
    _reasons(OLD_REASONS)
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.drop_column('dry_run')
