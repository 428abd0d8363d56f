"""A small shop on Prism: users and their orders, on the embedded SQLite default.

Generate the client first (the README's quick start does both):

    prism generate examples/proto -o examples/gen
    python examples/shop.py
"""

from __future__ import annotations

import asyncio
import datetime
import sys
from pathlib import Path

# The generated packages (acme.users.v1, acme.orders.v1) live in examples/gen.
sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))

from acme.events.v1 import events_pb2, events_prism
from acme.orders.v1 import orders_pb2, orders_prism
from acme.users.v1 import users_pb2, users_prism

import prism_runtime


async def main() -> None:
    """Register users, place orders, read them back."""
    async with prism_runtime.connect() as db:  # no argument: ./prism.db, or $PRISM_URL
        users = users_prism.UserProfileStore(db)
        orders = orders_prism.OrderStore(db)

        ada = users_pb2.UserProfile(
            user_id="u-ada", email="ada@example.com", display_name="Ada", tier=users_pb2.TIER_PRO
        )
        ada.created_at.GetCurrentTime()
        ada.tags.extend(["early-adopter", "math"])
        await users.put(ada)
        await users.put_many(
            users_pb2.UserProfile(user_id=f"u-{name.lower()}", display_name=name)
            for name in ("Grace", "Linus")
        )

        for n, cents in enumerate((1250, 990, 4300)):
            order = orders_pb2.Order(
                customer_id="u-ada",
                order_ref=f"2026-11-26T10:0{n}:00Z-{n}",
                total_cents=cents,
                status=orders_pb2.Order.STATUS_PLACED,
            )
            order.items.add(sku=f"sku-{n}", quantity=1, unit_price_cents=cents)
            await orders.put(order)

        got = await users.get("u-ada")
        assert got == ada, "a put message reads back equal"
        print(
            f"user {got.user_id}: {got.display_name}, tier {users_pb2.Tier.Name(got.tier)}, tags {list(got.tags)}"
        )

        found = await users.get_many(["u-grace", "u-nobody", "u-linus"])
        print("get_many:", [u.display_name if u else None for u in found])

        print("all users in key order:", [u.user_id async for u in users.scan(limit=100)])

        recent = [o async for o in orders.scan("u-ada", reverse=True, limit=2)]
        print("ada's two latest orders:", [(o.order_ref, o.total_cents) for o in recent])

        # A TimeSeries: planned on Kafka (10000 writes/s, 90 days); with no Kafka configured, the
        # embedded default serves it. A retried append is stored once.
        clicks = events_prism.ClickEventSeries(db)
        start = datetime.datetime(2026, 11, 26, 10, 0, tzinfo=datetime.UTC)
        for second, page in enumerate(("/", "/shoes", "/cart", "/shoes")):
            click = events_pb2.ClickEvent(user_id="u-ada", page=page)
            click.at.FromDatetime(start + datetime.timedelta(seconds=second))
            await clicks.append(click)
            await clicks.append(click)
        first_three = clicks.query("u-ada", start, start + datetime.timedelta(seconds=3))
        print("ada's clicks in the first 3 s:", [c.page async for c in first_three])

        print("deleted u-linus:", await users.delete("u-linus"), "| again:", await users.delete("u-linus"))
        print(f"data is in {db.url.url}: open it with sqlite3 to see typed columns")


if __name__ == "__main__":
    asyncio.run(main())
