"""referral codes, referrer links and referral rewards (issue 15.4)

Revision ID: 0018_referrals
Revises: 0017_campaign_holdout

"""
import secrets

import sqlalchemy as sa
from alembic import op

revision = '0018_referrals'
down_revision = '0017_campaign_holdout'
branch_labels = None
depends_on = None

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # as crm/members/models.py: no 0/O, 1/I
_RANDOM = secrets.SystemRandom()


def _backfill_codes():
    """Every existing member gets a random code now (new members get one at registration)."""
    bind = op.get_bind()
    members = sa.table('members', sa.column('id', sa.Integer), sa.column('referral_code', sa.String))
    taken = set()
    ids = bind.execute(sa.select(members.c.id).where(members.c.referral_code.is_(None))).scalars().all()
    for start in range(0, len(ids), 1000):
        batch = []
        for member_id in ids[start:start + 1000]:
            code = None
            while code is None or code in taken:
                code = "".join(_RANDOM.choice(_ALPHABET) for _ in range(8))
            taken.add(code)
            batch.append({"mid": member_id, "code": code})
        bind.execute(members.update().where(members.c.id == sa.bindparam("mid"))
                     .values(referral_code=sa.bindparam("code")), batch)


def upgrade():
    with op.batch_alter_table('members') as batch:
        batch.add_column(sa.Column('referral_code', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('referred_by_id', sa.Integer(), nullable=True))
    _backfill_codes()
    with op.batch_alter_table('members') as batch:
        batch.alter_column('referral_code', existing_type=sa.String(length=8), nullable=False)
        batch.create_unique_constraint(batch.f('uq_members_referral_code'), ['referral_code'])
        batch.create_foreign_key(batch.f('fk_members_referred_by_id_members'), 'members', ['referred_by_id'], ['id'])
        batch.create_index(batch.f('ix_members_referred_by_id'), ['referred_by_id'], unique=False)
    op.create_table('referral_counts',
    sa.Column('referrer_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('rewarded', sa.Integer(), nullable=False),
    sa.CheckConstraint('rewarded >= 0', name=op.f('ck_referral_counts_rewarded_non_negative')),
    sa.ForeignKeyConstraint(['referrer_id'], ['members.id'], name=op.f('fk_referral_counts_referrer_id_members')),
    sa.PrimaryKeyConstraint('referrer_id', 'year', name=op.f('pk_referral_counts'))
    )
    op.create_table('referral_rewards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referee_id', sa.Integer(), nullable=False),
    sa.Column('referrer_id', sa.Integer(), nullable=False),
    sa.Column('checkout_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('referrer_points', sa.Integer(), nullable=False),
    sa.Column('referee_points', sa.Integer(), nullable=False),
    sa.Column('referrer_entry_id', sa.Integer(), nullable=True),
    sa.Column('referee_entry_id', sa.Integer(), nullable=True),
    sa.Column('referrer_coupon_id', sa.Integer(), nullable=True),
    sa.Column('referee_coupon_id', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reversed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reversed_by', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('points', 'coupon')", name=op.f('ck_referral_rewards_kind')),
    sa.CheckConstraint('referrer_points >= 0 AND referee_points >= 0', name=op.f('ck_referral_rewards_points')),
    sa.CheckConstraint("status IN ('granted', 'reversed')", name=op.f('ck_referral_rewards_status')),
    sa.ForeignKeyConstraint(['checkout_id'], ['checkouts.id'], name=op.f('fk_referral_rewards_checkout_id_checkouts')),
    sa.ForeignKeyConstraint(['referee_coupon_id'], ['coupons.id'],
                            name=op.f('fk_referral_rewards_referee_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['referee_entry_id'], ['points_entries.id'],
                            name=op.f('fk_referral_rewards_referee_entry_id_points_entries')),
    sa.ForeignKeyConstraint(['referee_id'], ['members.id'], name=op.f('fk_referral_rewards_referee_id_members')),
    sa.ForeignKeyConstraint(['referrer_coupon_id'], ['coupons.id'],
                            name=op.f('fk_referral_rewards_referrer_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['referrer_entry_id'], ['points_entries.id'],
                            name=op.f('fk_referral_rewards_referrer_entry_id_points_entries')),
    sa.ForeignKeyConstraint(['referrer_id'], ['members.id'], name=op.f('fk_referral_rewards_referrer_id_members')),
    sa.ForeignKeyConstraint(['reversed_by'], ['staff.id'], name=op.f('fk_referral_rewards_reversed_by_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_rewards')),
    sa.UniqueConstraint('checkout_id', name=op.f('uq_referral_rewards_checkout_id'))
    )
    with op.batch_alter_table('referral_rewards') as batch:
        batch.create_index('ix_referral_rewards_referrer_year', ['referrer_id', 'year'], unique=False)
        batch.create_index('uq_referral_rewards_referee_granted', ['referee_id'], unique=True,
                           sqlite_where=sa.text("status = 'granted'"), postgresql_where=sa.text("status = 'granted'"))


def downgrade():
    op.drop_table('referral_rewards')
    op.drop_table('referral_counts')
    with op.batch_alter_table('members') as batch:
        batch.drop_index(batch.f('ix_members_referred_by_id'))
        batch.drop_constraint(batch.f('fk_members_referred_by_id_members'), type_='foreignkey')
        batch.drop_constraint(batch.f('uq_members_referral_code'), type_='unique')
        batch.drop_column('referred_by_id')
        batch.drop_column('referral_code')
