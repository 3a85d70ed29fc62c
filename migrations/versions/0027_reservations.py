"""hotel front desk (issue 17.2): PMS reservations and member preferences

Revision ID: 0027_reservations
Revises: 0026_stay_points

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0027_reservations'
down_revision = '0026_stay_points'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
