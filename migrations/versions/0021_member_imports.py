"""placeholder (issue 16): filled in by the work that needs it

Revision ID: 0021_member_imports
Revises: 0020_member_lifecycle

"""
revision = '0021_member_imports'
down_revision = '0020_member_lifecycle'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
