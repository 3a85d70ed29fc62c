"""stays in the programme (issue 17.1): points and level spend earned by hotel stays

Revision ID: 0026_stay_points
Revises: 0025_kpi_targets

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0026_stay_points'
down_revision = '0025_kpi_targets'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
