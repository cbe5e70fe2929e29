"""Which service a request went to: the app itself, a known platform, or another host.

* **app** — the captured app's own origins. Every exchange the proxy captures is the app's
  (rsproxy runs mitmproxy in reverse mode in front of one target), so the proxy's events teach
  the resolver the target's ``host:port`` and the name the browser used for the proxy (the
  ``Host`` header). A probe ``resource`` event for one of those origins is the app too. Hosts can
  also be configured (``app_hosts``). In a replayed HAR there is no proxy: a page document, or a
  request the browser marked same-origin (``Sec-Fetch-Site``, ``Origin``, ``Referer``), teaches
  the app's origin instead.
* **a platform id** — ``supabase``, ``stripe``, ``vercel``, ``cloudflare``, ``railway``,
  ``openai``, ``anthropic``, ``resend``, ``google-analytics``, ``sentry``, ``firebase``,
  ``clerk``, ``auth0``, ``twilio``, ``sendgrid``, ``github``, ``aws``, ... matched on the host
  name and its parent domains (``abc.supabase.co`` → ``supabase``). A few local development
  ports are platforms too (the Supabase CLI's API on 54321, Wrangler on 8787).
* **the host name** otherwise; a loopback host keeps its port (``localhost:8000``), since on one
  machine the port is what tells two local services apart.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

# domain → service id; a domain also matches its subdomains. Most specific wins.
PLATFORM_DOMAINS: dict[str, str] = {
    # databases, auth and backends as a service
    "supabase.co": "supabase",
    "supabase.in": "supabase",
    "supabase.com": "supabase",
    "firebaseio.com": "firebase",
    "firebaseapp.com": "firebase",
    "web.app": "firebase",
    "firestore.googleapis.com": "firebase",
    "firebase.googleapis.com": "firebase",
    "firebaseinstallations.googleapis.com": "firebase",
    "firebasestorage.googleapis.com": "firebase",
    "identitytoolkit.googleapis.com": "firebase",
    "securetoken.googleapis.com": "firebase",
    "clerk.accounts.dev": "clerk",
    "clerk.com": "clerk",
    "clerk.dev": "clerk",
    "auth0.com": "auth0",
    "neon.tech": "neon",
    "psdb.cloud": "planetscale",
    "mongodb.net": "mongodb",
    "upstash.io": "upstash",
    "convex.cloud": "convex",
    "appwrite.io": "appwrite",
    "pocketbase.io": "pocketbase",
    # hosting and edge
    "vercel.app": "vercel",
    "vercel.com": "vercel",
    "vercel-insights.com": "vercel",
    "vercel-storage.com": "vercel",
    "workers.dev": "cloudflare",
    "pages.dev": "cloudflare",
    "r2.dev": "cloudflare",
    "r2.cloudflarestorage.com": "cloudflare",
    "cloudflare.com": "cloudflare",
    "cloudflareinsights.com": "cloudflare",
    "railway.app": "railway",
    "up.railway.app": "railway",
    "railway.com": "railway",
    "netlify.app": "netlify",
    "netlify.com": "netlify",
    "onrender.com": "render",
    "fly.dev": "fly",
    "herokuapp.com": "heroku",
    "deno.dev": "deno-deploy",
    "amazonaws.com": "aws",
    "on.aws": "aws",
    "cloudfront.net": "aws",
    "azurewebsites.net": "azure",
    "azure.com": "azure",
    "windows.net": "azure",
    # payments and commerce
    "stripe.com": "stripe",
    "stripe.network": "stripe",
    "paypal.com": "paypal",
    "paddle.com": "paddle",
    "lemonsqueezy.com": "lemonsqueezy",
    "myshopify.com": "shopify",
    "shopify.com": "shopify",
    # AI
    "api.openai.com": "openai",
    "openai.com": "openai",
    "openai.azure.com": "azure-openai",
    "api.anthropic.com": "anthropic",
    "anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "google-ai",
    "api.mistral.ai": "mistral",
    "api.groq.com": "groq",
    "api.cohere.ai": "cohere",
    "api.cohere.com": "cohere",
    "api.replicate.com": "replicate",
    "huggingface.co": "huggingface",
    "openrouter.ai": "openrouter",
    # messaging
    "resend.com": "resend",
    "sendgrid.com": "sendgrid",
    "sendgrid.net": "sendgrid",
    "twilio.com": "twilio",
    "mailgun.net": "mailgun",
    "postmarkapp.com": "postmark",
    "pusher.com": "pusher",
    "ably.io": "ably",
    "ably.net": "ably",
    # analytics, monitoring, tracking
    "google-analytics.com": "google-analytics",
    "analytics.google.com": "google-analytics",
    "googletagmanager.com": "google-analytics",
    "doubleclick.net": "google-ads",
    "googlesyndication.com": "google-ads",
    "sentry.io": "sentry",
    "sentry-cdn.com": "sentry",
    "posthog.com": "posthog",
    "segment.io": "segment",
    "segment.com": "segment",
    "mixpanel.com": "mixpanel",
    "amplitude.com": "amplitude",
    "datadoghq.com": "datadog",
    "datadoghq.eu": "datadog",
    "browser-intake-datadoghq.com": "datadog",
    "hotjar.com": "hotjar",
    "hotjar.io": "hotjar",
    "logrocket.io": "logrocket",
    "logrocket.com": "logrocket",
    "intercom.io": "intercom",
    "intercomcdn.com": "intercom",
    "facebook.net": "facebook",
    "facebook.com": "facebook",
    "hubspot.com": "hubspot",
    "hs-scripts.com": "hubspot",
    "launchdarkly.com": "launchdarkly",
    "plausible.io": "plausible",
    # developer APIs, content, maps, CDNs
    "api.github.com": "github",
    "github.com": "github",
    "githubusercontent.com": "github",
    "algolia.net": "algolia",
    "algolianet.com": "algolia",
    "contentful.com": "contentful",
    "ctfassets.net": "contentful",
    "sanity.io": "sanity",
    "cloudinary.com": "cloudinary",
    "mapbox.com": "mapbox",
    "maps.googleapis.com": "google-maps",
    "fonts.googleapis.com": "google-fonts",
    "fonts.gstatic.com": "google-fonts",
    "recaptcha.net": "google-recaptcha",
    "googleapis.com": "google-apis",
    "gravatar.com": "gravatar",
    "jsdelivr.net": "jsdelivr",
    "unpkg.com": "unpkg",
}

# Local development servers of platforms, by their default port.
LOCAL_PORTS: dict[int, str] = {54321: "supabase", 8787: "cloudflare", 9099: "firebase"}

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@lru_cache(maxsize=4096)
def platform_for_host(host: str) -> str | None:
    """The known platform a host name belongs to, or None."""
    host = host.lower().rstrip(".")
    if host.startswith("clerk.") and host.count(".") >= 2:
        return "clerk"  # Clerk's production Frontend API lives at clerk.<the app's domain>
    labels = host.split(".")
    for i in range(len(labels) - 1):
        found = PLATFORM_DOMAINS.get(".".join(labels[i:]))
        if found is not None:
            return found
    return None


def is_loopback(host: str) -> bool:
    host = host.lower()
    return host in _LOOPBACK or host.startswith("127.") or host.endswith(".localhost")


def split_origin(url: str) -> tuple[str, int | None]:
    """(host, port) of a URL, the port defaulted from the scheme; ("", None) when unparsable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "", None
    host = parts.hostname or ""
    return host, port if port is not None else _DEFAULT_PORTS.get(parts.scheme.lower())


def split_host_header(value: str, default_port: int | None) -> tuple[str, int | None]:
    """(host, port) of a ``Host`` header value (``localhost:8080``, ``[::1]:8080``)."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    return host, int(port_text) if port_text.isdigit() else default_port


class ServiceResolver:
    """Names the service of a host; learns the app's own origins as they show themselves."""

    def __init__(self, app_hosts: list[str] | tuple[str, ...] = ()) -> None:
        # "host" entries match any port; "host:port" entries only that port
        self._app_any: set[str] = set()
        self._app: set[tuple[str, int | None]] = set()
        self._cache: dict[tuple[str, int | None], str] = {}
        for entry in app_hosts:
            entry = entry.strip().lower()
            if "://" in entry:
                self._app.add(split_origin(entry))
            elif ":" in entry and not entry.startswith("["):
                self._app.add(split_host_header(entry, None))
            elif entry:
                self._app_any.add(entry.strip("[]"))

    def learn_app(self, host: str, port: int | None) -> None:
        key = (host.lower(), port)
        if host and key not in self._app:
            self._app.add(key)
            self._cache.clear()

    def is_app(self, host: str, port: int | None) -> bool:
        host = host.lower()
        return host in self._app_any or (host, port) in self._app

    def service(self, host: str, port: int | None = None) -> str:
        key = (host, port)
        found = self._cache.get(key)
        if found is None:
            found = self._resolve(host.lower(), port)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _resolve(self, host: str, port: int | None) -> str:
        if not host:
            return "unknown"
        if self.is_app(host, port):
            return "app"
        platform = platform_for_host(host)
        if platform is not None:
            return platform
        if is_loopback(host):
            if port in LOCAL_PORTS:
                return LOCAL_PORTS[port]
            return f"{host}:{port}" if port is not None else host
        return host
