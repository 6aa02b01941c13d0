"""admin activity log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import plugin_server.models.base

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'admin_activity',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('actor', sa.String(length=120), nullable=False),
        sa.Column('action', sa.String(length=60), nullable=False),
        sa.Column('detail_json', sa.Text(), nullable=False),
        sa.Column('created_at', plugin_server.models.base.UTCDateTime(timezone=True),
                  nullable=False),
        sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'],
                                name=op.f('fk_admin_activity_merchant_id_merchants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_activity')),
    )
    op.create_index('ix_admin_activity_merchant_created', 'admin_activity',
                    ['merchant_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_admin_activity_merchant_created', table_name='admin_activity')
    op.drop_table('admin_activity')
