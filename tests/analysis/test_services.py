"""Service detection (rsproxy/analysis/services.py): the app, known platforms, other hosts."""

from __future__ import annotations

import pytest

from rsproxy.analysis.services import (
    ServiceResolver,
    platform_for_host,
    split_host_header,
    split_origin,
)


@pytest.mark.parametrize(
    ("host", "service"),
    [
        ("xyzcompany.supabase.co", "supabase"),
        ("api.stripe.com", "stripe"),
        ("js.stripe.com", "stripe"),
        ("my-app-git-main.vercel.app", "vercel"),
        ("vercel.com", "vercel"),
        ("api.my-worker.workers.dev", "cloudflare"),
        ("backend-production.up.railway.app", "railway"),
        ("api.openai.com", "openai"),
        ("api.anthropic.com", "anthropic"),
        ("api.resend.com", "resend"),
        ("www.google-analytics.com", "google-analytics"),
        ("region1.google-analytics.com", "google-analytics"),
        ("www.googletagmanager.com", "google-analytics"),
        ("o123.ingest.sentry.io", "sentry"),
        ("my-project-default-rtdb.firebaseio.com", "firebase"),
        ("firestore.googleapis.com", "firebase"),
        ("generativelanguage.googleapis.com", "google-ai"),
        ("storage.googleapis.com", "google-apis"),
        ("clerk.example.com", "clerk"),
        ("happy-cat-12.clerk.accounts.dev", "clerk"),
        ("dev-abc.us.auth0.com", "auth0"),
        ("api.twilio.com", "twilio"),
        ("api.sendgrid.com", "sendgrid"),
        ("api.github.com", "github"),
        ("my-bucket.s3.eu-west-1.amazonaws.com", "aws"),
        ("abc123.execute-api.us-east-1.amazonaws.com", "aws"),
        ("API.STRIPE.COM.", "stripe"),
    ],
)
def test_known_platforms(host: str, service: str) -> None:
    assert platform_for_host(host) == service
    assert ServiceResolver().service(host, 443) == service


@pytest.mark.parametrize("host", ["example.com", "notsupabase.co", "stripe.com.evil.net", "co"])
def test_unknown_hosts_are_not_platforms(host: str) -> None:
    assert platform_for_host(host) is None
    assert ServiceResolver().service(host, 443) == host


def test_the_app_is_what_was_learned_or_configured() -> None:
    resolver = ServiceResolver(["myapp.test", "localhost:8000", "https://staging.example.com"])
    assert resolver.service("myapp.test", 1234) == "app"
    assert resolver.service("localhost", 8000) == "app"
    assert resolver.service("staging.example.com", 443) == "app"
    assert resolver.service("staging.example.com", 8443) == "staging.example.com"
    # an unknown local port is its own service, named with the port that tells it apart
    assert resolver.service("127.0.0.1", 8080) == "127.0.0.1:8080"
    resolver.learn_app("127.0.0.1", 8080)  # the proxy's address, shown by the proxy's events
    assert resolver.service("127.0.0.1", 8080) == "app"
    assert resolver.service("127.0.0.1", 9999) == "127.0.0.1:9999"


def test_the_app_wins_over_a_platform_it_is_deployed_on() -> None:
    resolver = ServiceResolver()
    assert resolver.service("my-app.vercel.app", 443) == "vercel"
    resolver.learn_app("my-app.vercel.app", 443)  # rsproxy start --target https://my-app.vercel.app
    assert resolver.service("my-app.vercel.app", 443) == "app"
    assert resolver.service("other-app.vercel.app", 443) == "vercel"


def test_local_platform_ports() -> None:
    resolver = ServiceResolver()
    assert resolver.service("127.0.0.1", 54321) == "supabase"  # `supabase start`
    assert resolver.service("localhost", 8787) == "cloudflare"  # `wrangler dev`


def test_origins_and_host_headers() -> None:
    assert split_origin("http://127.0.0.1:8080/x?y") == ("127.0.0.1", 8080)
    assert split_origin("https://Example.com/") == ("example.com", 443)
    assert split_origin("http://[::1]:3000/") == ("::1", 3000)
    assert split_origin("not a url") == ("", None)
    assert split_origin("http://bad:port/") == ("", None)
    assert split_host_header("localhost:8080", 80) == ("localhost", 8080)
    assert split_host_header("Example.com", 443) == ("example.com", 443)
    assert split_host_header("[::1]:8080", 80) == ("::1", 8080)
