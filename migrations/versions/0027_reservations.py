"""hotel front desk (issue 17.2): PMS reservations and member preferences

Revision ID: 0027_reservations
Revises: 0026_stay_points

"""
import sqlalchemy as sa
from alembic import op

revision = '0027_reservations'
down_revision = '0026_stay_points'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reservations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('reservation_no', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('guest_name', sa.String(length=100), nullable=False),
    sa.Column('arrival', sa.Date(), nullable=False),
    sa.Column('departure', sa.Date(), nullable=False),
    sa.Column('rooms', sa.Integer(), nullable=False),
    sa.Column('room_type', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('departure >= arrival', name=op.f('ck_reservations_dates')),
    sa.CheckConstraint('rooms BETWEEN 1 AND 999', name=op.f('ck_reservations_rooms')),
    sa.CheckConstraint("status IN ('booked', 'cancelled', 'checked_in')", name=op.f('ck_reservations_status')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_reservations_member_id_members')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_reservations_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservations')),
    sa.UniqueConstraint('store_id', 'reservation_no', name=op.f('uq_reservations_store_no'))
    )
    op.create_index('ix_reservations_store_arrival', 'reservations', ['store_id', 'arrival'], unique=False)
    op.create_index(op.f('ix_reservations_member_id'), 'reservations', ['member_id'], unique=False)
    with op.batch_alter_table('members') as batch:
        batch.add_column(sa.Column('preferences', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade():
    with op.batch_alter_table('members') as batch:
        batch.drop_column('preferences')
    op.drop_index(op.f('ix_reservations_member_id'), table_name='reservations')
    op.drop_index('ix_reservations_store_arrival', table_name='reservations')
    op.drop_table('reservations')
