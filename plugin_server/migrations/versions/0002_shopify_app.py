"""shopify app: install nonces, history imports, privacy requests, install dates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 06:00:18.145860
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import plugin_server.models.base

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oauth_nonces',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('nonce_hash', sa.String(length=64), nullable=False),
    sa.Column('shop', sa.String(length=255), nullable=False),
    sa.Column('created_at', plugin_server.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', plugin_server.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', plugin_server.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_nonces')),
    sa.UniqueConstraint('nonce_hash', name=op.f('uq_oauth_nonces_nonce_hash'))
    )
    with op.batch_alter_table('oauth_nonces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_nonces_expires_at'), ['expires_at'], unique=False)

    op.create_table('data_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('platform_request_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', plugin_server.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_data_requests_merchant_id_merchants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_requests'))
    )
    with op.batch_alter_table('data_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_requests_merchant_id'), ['merchant_id'], unique=False)

    op.create_table('import_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('award_points', sa.Boolean(), nullable=False),
    sa.Column('operation_id', sa.String(length=190), nullable=False),
    sa.Column('created_before', plugin_server.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=False),
    sa.Column('started_at', plugin_server.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', plugin_server.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', plugin_server.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('running', 'completed', 'failed')", name=op.f('ck_import_runs_state')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_import_runs_merchant_id_merchants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_runs'))
    )
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_runs_merchant_id'), ['merchant_id'], unique=False)

    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('program_started_at', plugin_server.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('installed_at', plugin_server.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('uninstalled_at', plugin_server.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sync_checkpoint', plugin_server.models.base.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('order_refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision', sa.Integer(), nullable=False, server_default='0'))

    with op.batch_alter_table('program_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('award_past_orders', sa.Boolean(), nullable=False, server_default=sa.false()))



def downgrade() -> None:
    with op.batch_alter_table('order_refunds', schema=None) as batch_op:
        batch_op.drop_column('revision')

    with op.batch_alter_table('program_settings', schema=None) as batch_op:
        batch_op.drop_column('award_past_orders')

    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.drop_column('sync_checkpoint')
        batch_op.drop_column('uninstalled_at')
        batch_op.drop_column('installed_at')
        batch_op.drop_column('program_started_at')

    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_runs_merchant_id'))

    op.drop_table('import_runs')
    with op.batch_alter_table('data_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_requests_merchant_id'))

    op.drop_table('data_requests')
    with op.batch_alter_table('oauth_nonces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_nonces_expires_at'))

    op.drop_table('oauth_nonces')
