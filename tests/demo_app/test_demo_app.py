"""Tests for the bundled demo app, run for real: each test starts it on a loopback port.

The proxy's own tests lean on this app as their upstream, so these pin down the behaviour they
rely on: page shapes, JSON shapes, status codes, the login round trip, the redirect, the slow
endpoint, the event stream and the WebSocket echo.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import httpx
import pytest

from rsproxy.demo_app.app import make_app, serve
from rsproxy.testing import run_async

SLOW = 0.2


@asynccontextmanager
async def demo_client() -> AsyncIterator[httpx.AsyncClient]:
    runner, port = await serve(port=0, slow_seconds=SLOW)
    try:
        # trust_env=False: a proxy set in the environment must not sit between test and app.
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10
        ) as client:
            yield client
    finally:
        await runner.cleanup()


def run_with_client(body: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with demo_client() as client:
            await body(client)

    run_async(main())


PAGES = [
    "/",
    "/products",
    "/products/3",
    "/users/1",
    "/contact",
    "/contact/thanks",
    "/login",
    "/checkout",
    "/reports",
]


def test_serve_binds_an_ephemeral_port_and_cleans_up() -> None:
    async def main() -> None:
        runner, port = await serve(port=0, slow_seconds=SLOW)
        assert port > 0
        await runner.cleanup()

    run_async(main())


def test_pages_are_full_html_documents() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        for path in PAGES:
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("text/html"), path
            text = response.text
            assert text.lower().startswith("<!doctype html>"), path
            assert "<title>" in text and "</head>" in text, path
            assert '<link rel="stylesheet" href="/static/style.css">' in text, path
            assert '<script src="/static/app.js" defer></script>' in text, path
            assert "data-page=" in text, path

    run_with_client(body)


def test_pages_name_themselves_for_the_shared_script() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        product = (await client.get("/products/5")).text
        assert 'data-page="product" data-id="5"' in product
        home = (await client.get("/")).text
        for link in ("/products", "/users/1", "/contact", "/login", "/checkout", "/reports"):
            assert f'href="{link}"' in home

    run_with_client(body)


def test_unknown_paths_get_an_html_404_and_api_paths_a_json_404() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        page = await client.get("/no/such/page")
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "</head>" in page.text and "/no/such/page" in page.text

        api = await client.get("/api/nothing-here")
        assert api.status_code == 404
        assert "error" in api.json()

    run_with_client(body)


def test_static_files_have_their_content_types() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        js = await client.get("/static/app.js")
        assert js.status_code == 200
        assert "javascript" in js.headers["content-type"]
        assert "body.dataset.page" in js.text
        css = await client.get("/static/style.css")
        assert css.headers["content-type"].startswith("text/css")
        svg = await client.get("/static/logo.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in svg.text

    run_with_client(body)


def test_products_api_shapes() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        products = (await client.get("/api/products")).json()
        assert len(products) == 8
        for product in products:
            assert isinstance(product["id"], int)
            assert isinstance(product["name"], str)
            assert isinstance(product["price"], int | float)
            assert isinstance(product["tags"], list)
        assert any("discount" in p for p in products)
        assert any("discount" not in p for p in products)

        one = await client.get("/api/products/2")
        assert one.status_code == 200
        assert one.json()["id"] == 2
        reviews = (await client.get("/api/products/2/reviews")).json()
        assert reviews and all(r["product_id"] == 2 for r in reviews)

        assert (await client.get("/api/products")).json() == products  # deterministic

    run_with_client(body)


def test_unknown_product_is_a_json_404() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        for path in ("/api/products/999", "/api/products/999/reviews"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"].startswith("application/json")
            assert response.json() == {"error": "no such product"}

    run_with_client(body)


def test_users_orders_and_order_by_uuid() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        user = (await client.get("/api/users/1")).json()
        assert user["id"] == 1 and "@" in user["email"]
        orders = (await client.get("/api/users/1/orders")).json()
        assert orders
        for order in orders:
            uuid.UUID(order["id"])
            detail = await client.get(f"/api/orders/{order['id']}")
            assert detail.status_code == 200
            assert detail.json() == order
        assert (await client.get(f"/api/orders/{uuid.UUID(int=0)}")).status_code == 404
        assert (await client.get("/api/users/42")).status_code == 404

    run_with_client(body)


def test_login_token_opens_api_me() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        assert (await client.get("/api/me")).status_code == 401
        bogus = await client.get("/api/me", headers={"Authorization": "Bearer nope"})
        assert bogus.status_code == 401
        assert bogus.json()["error"]

        wrong = await client.post("/api/login", json={"username": "ada", "password": "x"})
        assert wrong.status_code == 401

        login = await client.post("/api/login", json={"username": "ada", "password": "demo"})
        assert login.status_code == 200
        session = login.json()
        assert session["access_token"] and session["user"]["username"] == "ada"

        me = await client.get(
            "/api/me", headers={"Authorization": f"Bearer {session['access_token']}"}
        )
        assert me.status_code == 200
        assert me.json() == session["user"]

        again = await client.post("/api/login", json={"username": "ada", "password": "demo"})
        assert again.json()["access_token"] != session["access_token"]

    run_with_client(body)


def test_checkout_always_fails_with_500() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        response = await client.post("/api/checkout", json={"items": [{"product_id": 1}]})
        assert response.status_code == 500
        assert response.json() == {"error": "payment provider unavailable"}

    run_with_client(body)


def test_contact_post_redirects_with_303() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        form = {"name": "Ada", "email": "ada@example.com", "message": "Hello"}
        response = await client.post("/contact", data=form)
        assert response.status_code == 303
        assert response.headers["location"] == "/contact/thanks"
        thanks = await client.get(response.headers["location"])
        assert thanks.status_code == 200 and "</head>" in thanks.text

    run_with_client(body)


def test_slow_report_takes_slow_seconds() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        started = time.monotonic()
        response = await client.get("/api/reports/slow")
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert elapsed >= SLOW
        assert response.json()["rows"]

    run_with_client(body)


def test_health() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        assert (await client.get("/api/health")).json() == {"status": "ok"}

    run_with_client(body)


def test_events_stream_five_ticks_then_ends() -> None:
    async def body(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            data = [line async for line in response.aiter_lines() if line.startswith("data:")]
        assert data == [f"data: tick {n}" for n in range(1, 6)]

    run_with_client(body)


def test_websocket_echoes_text_and_binary() -> None:
    async def main() -> None:
        runner, port = await serve(port=0, slow_seconds=SLOW)
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(f"http://127.0.0.1:{port}/ws/echo") as ws,
            ):
                await ws.send_str("hello")
                assert (await ws.receive(timeout=5)).data == "hello"
                await ws.send_bytes(b"\x00\x01\x02")
                binary = await ws.receive(timeout=5)
                assert binary.type is aiohttp.WSMsgType.BINARY
                assert binary.data == b"\x00\x01\x02"
                await ws.close()
        finally:
            await runner.cleanup()

    run_async(main())


def test_make_app_rejects_negative_slow_seconds() -> None:
    with pytest.raises(ValueError, match="slow_seconds"):
        make_app(slow_seconds=-1)
