"""Which phone number belongs to which business-scoped user id (BSUID), remembered across webhooks.

Meta identifies every customer by a BSUID (`from_user_id`, `contacts[].user_id`) and may leave the
phone number out for customers who adopted a username. The conversation key (the queue key and
Rasa's sender_id) is the phone when it is known, else the BSUID (`connectors/README.md`). "Known"
includes earlier webhooks: whenever one carries both, the pair is kept here, so a customer whose
phone later disappears from the webhooks stays in the same conversation, and statuses that carry
only `recipient_user_id` are matched to it.

A BSUID belongs to one phone number: Meta issues a new BSUID when a customer changes number.
Usernames are display only and are not kept.

A customer first seen without a phone is keyed by the BSUID, and that key sticks
(`wa_bsuid_keyed_customers`): when their phone turns up later (shared, or back in Meta's contact book)
it is carried in the metadata, but switching the key would start a new conversation in Rasa and the
inbox, with the hand-off and the transcript left behind under the old one.

The table lives in the store's database and is created with the store's other tables
(`WhatsAppStore.create_schema`), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Dict, Iterable, Optional, Set, Tuple

from sqlalchemy import Column, Float, Index, String, Table, select, text
from sqlalchemy.engine import Engine

from connectors.inbound import ParsedWebhook, ReceivedMessage, StatusUpdate
from connectors.prepared_statements import prepared
from connectors.privacy import mask_user_id
from connectors.store import WhatsAppStore, metadata

logger = logging.getLogger(__name__)

identities = Table(
    "wa_customer_identities",
    metadata,  # the store's: created by WhatsAppStore.create_schema under its schema lock
    Column("user_id", String(160), primary_key=True),  # BSUID: 2 + 1 + 4 + 128 characters at most
    Column("phone", String(32), nullable=False),
    Column("first_seen_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_wa_customer_identities_phone", "phone"),
)

# Customers whose conversation is keyed by their BSUID because their first message came without a
# phone; the key stays when a phone appears later.
bsuid_keyed = Table(
    "wa_bsuid_keyed_customers",
    metadata,
    Column("user_id", String(160), primary_key=True),
    Column("first_seen_at", Float, nullable=False),
)

_KEEP_BSUID_KEY = text(
    "INSERT INTO wa_bsuid_keyed_customers (user_id, first_seen_at) VALUES (:user_id, :now) "
    "ON CONFLICT (user_id) DO NOTHING"
).execution_options(**prepared("kesar_bsuid_key"))

# Text for the same reason as the store's hot inserts: one statement both databases accept.
_UPSERT = text(
    "INSERT INTO wa_customer_identities (user_id, phone, first_seen_at, updated_at) "
    "VALUES (:user_id, :phone, :now, :now) "
    "ON CONFLICT (user_id) DO UPDATE SET phone = excluded.phone, updated_at = excluded.updated_at"
).execution_options(**prepared("kesar_identity_upsert"))


# Each lookup and write stands alone (a pair is a fact of its own; the cache learns it after the write): on PostgreSQL
# on the store's autocommit engine, so each statement commits by itself without BEGIN and COMMIT round trips (a
# status webhook's first status of a customer new to the process: SELECT, upsert, the status: 3 round trips, not 9);
# on SQLite in short transactions of the fully synced engine, as before.
def _engine(store: WhatsAppStore) -> Engine:
    return store._autocommit or store.engine


# Pairs this process has seen, so the statuses of phone customers (both ids, three per reply) cost no
# query: 0.18 -> 0.003 ms CPU per status webhook (SQLite). A BSUID's phone does not change, so nothing goes stale
# that matters; only found pairs are kept (another process may learn a pair at any time).
CACHE_SIZE = 50_000


class CustomerIdentities:
    def __init__(self, store: WhatsAppStore) -> None:
        self._store = store
        self._known: Dict[str, str] = {}
        # Which BSUIDs keep their own key. A "no" is cached only once the phone is known: from then on
        # no process makes the BSUID the key (only a message with no phone, known or given, does).
        self._bsuid_keyed: Set[str] = set()
        self._phone_keyed: Set[str] = set()

    # Synchronous, like the store's methods: async callers go through `store.run(...)`.

    def phones_for(self, user_ids: Iterable[str]) -> Dict[str, str]:
        wanted = set(user_ids)
        found = {user_id: self._known[user_id] for user_id in wanted if user_id in self._known}
        missing = sorted(wanted - found.keys())
        if missing:
            with _engine(self._store).connect() as connection:
                rows = connection.execute(
                    select(identities.c.user_id, identities.c.phone).where(identities.c.user_id.in_(missing))
                    .execution_options(**prepared("kesar_identities"))  # one per number of ids (usually 1)
                ).all()
            for row in rows:
                found[row.user_id] = row.phone
                self._keep(row.user_id, row.phone)
        return found

    def _keep(self, user_id: str, phone: str) -> None:
        if len(self._known) >= CACHE_SIZE:
            self._known.clear()  # simple bound; the table has them all
        self._known[user_id] = phone

    def phone_for(self, user_id: str) -> Optional[str]:
        return self.phones_for([user_id]).get(user_id)

    def remember(self, pairs: Iterable[Tuple[str, str]]) -> int:
        """Keep (BSUID, phone) pairs; returns how many were new or changed."""
        wanted = dict(pairs)
        if not wanted:
            return 0
        known = self.phones_for(wanted)
        changed = {user_id: phone for user_id, phone in wanted.items() if known.get(user_id) != phone}
        if not changed:
            return 0  # the usual case: no write per message
        now = time.time()
        with _engine(self._store).begin() as connection:
            for user_id, phone in changed.items():
                if user_id in known:
                    # Not expected (a new number gets a new BSUID); the latest word wins.
                    logger.warning(
                        "WhatsApp user %s now comes with phone %s (was %s)",
                        mask_user_id(user_id), mask_user_id(phone), mask_user_id(known[user_id]),
                    )
                connection.execute(_UPSERT, {"user_id": user_id, "phone": phone, "now": now})
        for user_id, phone in changed.items():  # after the commit
            self._keep(user_id, phone)
        return len(changed)

    def keyed_by_bsuid(self, user_ids: Iterable[str]) -> Set[str]:
        """The BSUIDs among `user_ids` whose conversation is keyed by the BSUID itself."""
        wanted = set(user_ids)
        unknown = sorted(wanted - self._bsuid_keyed - self._phone_keyed)
        if unknown:
            with _engine(self._store).connect() as connection:
                found = set(connection.execute(
                    select(bsuid_keyed.c.user_id).where(bsuid_keyed.c.user_id.in_(unknown))
                    .execution_options(**prepared("kesar_bsuid_keyed"))
                ).scalars())
            if len(self._bsuid_keyed) + len(self._phone_keyed) >= CACHE_SIZE:
                self._bsuid_keyed.clear()  # simple bound, as for the phones
                self._phone_keyed.clear()
            self._bsuid_keyed |= found
            self._phone_keyed |= {user_id for user_id in unknown if user_id not in found and user_id in self._known}
        return wanted & self._bsuid_keyed

    def keep_bsuid_keys(self, user_ids: Iterable[str]) -> None:
        new = sorted(set(user_ids) - self._bsuid_keyed)
        if not new:
            return
        now = time.time()
        with _engine(self._store).begin() as connection:
            for user_id in new:
                connection.execute(_KEEP_BSUID_KEY, {"user_id": user_id, "now": now})
        self._bsuid_keyed.update(new)

    def resolve(self, parsed: ParsedWebhook) -> ParsedWebhook:
        """Learn the pairs a webhook carries, then key every message and status by the phone when
        it is known, else by the BSUID (the contract's conversation key); a customer first seen
        without a phone keeps the BSUID key."""
        self.remember(
            [(m.message.user_id, m.message.phone) for m in parsed.messages if m.message.user_id and m.message.phone]
            + [(s.recipient_user_id, s.recipient_phone) for s in parsed.statuses if s.recipient_user_id and s.recipient_phone]
        )
        phone_less = [m.message.user_id for m in parsed.messages if m.message.phone is None and m.message.user_id]
        phone_less += [s.recipient_user_id for s in parsed.statuses if s.recipient_phone is None and s.recipient_user_id]
        phones = self.phones_for(phone_less)
        self.keep_bsuid_keys(
            m.message.user_id for m in parsed.messages
            if m.message.phone is None and m.message.user_id and m.message.user_id not in phones
        )
        senders = [m.message.user_id for m in parsed.messages if m.message.user_id]
        own_key = self.keyed_by_bsuid(senders) if senders else set()
        if not phones and not own_key:
            return parsed
        return dataclasses.replace(
            parsed,
            messages=[_keyed(item, phones, own_key) for item in parsed.messages],
            statuses=[_status_with_phone(status, phones) for status in parsed.statuses],
        )


def _keyed(item: ReceivedMessage, phones: Dict[str, str], own_key: Set[str]) -> ReceivedMessage:
    message = item.message
    phone = message.phone or phones.get(message.user_id or "")
    if message.user_id in own_key:
        key = message.user_id  # first seen without a phone: the BSUID stays the key
    else:
        key = phone or message.wa_id
    if (key, phone) == (message.wa_id, message.phone):
        return item
    return dataclasses.replace(item, message=dataclasses.replace(message, phone=phone, wa_id=key))


def _status_with_phone(status: StatusUpdate, phones: Dict[str, str]) -> StatusUpdate:
    phone = phones.get(status.recipient_user_id or "") if status.recipient_phone is None else None
    if phone is None:
        return status
    return dataclasses.replace(status, recipient_phone=phone, recipient_id=phone)

