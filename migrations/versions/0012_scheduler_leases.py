"""scheduler leadership lease and heartbeat; delivery send ids

Revision ID: 0012_scheduler_leases
Revises: 0011_staff_sessions

"""
from alembic import op
import sqlalchemy as sa

revision = '0012_scheduler_leases'
down_revision = '0011_staff_sessions'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
