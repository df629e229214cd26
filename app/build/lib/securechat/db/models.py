"""Database tables. Every column that carries conversation content holds ciphertext only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints, so that MySQL migrations can drop and alter them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UUID_CHARS = 36
# A BLOB holds at most 64 KiB on MySQL; ciphertext may be larger than that.
Ciphertext = LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
# Millisecond precision on MySQL (its DATETIME drops fractions otherwise).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(UUID_CHARS), primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    auth_hash: Mapped[str] = mapped_column(String(255))
    kdf_salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    kdf_iterations: Mapped[int] = mapped_column(Integer)
    key_version: Mapped[int] = mapped_column(Integer)
    key_blob_nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    key_blob_ciphertext: Mapped[bytes] = mapped_column(Ciphertext)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class UserKey(Base):
    """Every public key version a user ever had, so old signatures stay verifiable."""

    __tablename__ = "user_keys"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    key_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    ecdh_public: Mapped[bytes] = mapped_column(LargeBinary(65))
    ecdsa_public: Mapped[bytes] = mapped_column(LargeBinary(65))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class AuthSession(Base):
    """A login. Only the SHA-256 of the bearer token is stored."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex sha256(token)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(UUID_CHARS), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    title: Mapped[str | None] = mapped_column(String(100))
    # "<smaller user id>:<larger user id>" for direct conversations: one per pair.
    direct_pair: Mapped[str | None] = mapped_column(String(2 * UUID_CHARS + 1), unique=True)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    epoch: Mapped[int] = mapped_column(Integer)
    rotation_required: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Member(Base):
    __tablename__ = "conversation_members"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(8))
    joined_at: Mapped[datetime] = mapped_column(Timestamp)
    last_read_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Epoch(Base):
    __tablename__ = "epochs"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    wrapper_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    wrapper_key_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class EpochKey(Base):
    """An epoch key wrapped for one recipient: opaque to the server."""

    __tablename__ = "epoch_keys"
    __table_args__ = (
        ForeignKeyConstraint(
            ["conversation_id", "epoch"],
            ["epochs.conversation_id", "epochs.epoch"],
            name="fk_epoch_keys_epoch_epochs",
        ),
        Index("ix_epoch_keys_recipient", "recipient_id", "conversation_id"),
    )

    conversation_id: Mapped[str] = mapped_column(String(UUID_CHARS), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    recipient_key_version: Mapped[int] = mapped_column(Integer)
    ephemeral_public: Mapped[bytes] = mapped_column(LargeBinary(65))
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class Message(Base):
    """An envelope as sent, plus the server's sequence number and time."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "message_id", name="uq_messages_conversation_message"),
    )

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[str] = mapped_column(String(UUID_CHARS))
    sender_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    sender_key_version: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes] = mapped_column(Ciphertext)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    server_time: Mapped[datetime] = mapped_column(Timestamp)
