"""URL path templates (rsproxy/analysis/templates.py): ids by shape, parameters by cardinality.

Each id kind gets a template from one sample; words and slugs stay literal until a position
proves it takes many values; literal siblings and collections never fold; a fold is reported
once, on the right events, and later calls for the old paths get the new template.
"""

from __future__ import annotations

import random
import uuid

import pytest

from rsproxy.analysis.templates import (
    ID,
    PathTemplater,
    _plain_id,
    _shape,
    parse_pinned,
    segment_marker,
    singular,
)

ID_SHAPES = {
    "numeric": "42",
    "uuid": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    "uuid upper-case": "3F2504E0-4F89-11D3-9A0C-0305E82C3301",
    "ulid": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "objectid": "507f1f77bcf86cd799439011",
    "sha1": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "hex 16": "9f86d081884c7d65",
    "uuid without dashes": "3f2504e04f8911d39a0c0305e82c3301",
    "stripe id": "cus_NffrFeUfNV2Hib",
    "clerk id": "user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
    "nanoid": "V1StGXR8_Z5jdHi6B-myT",
    "cuid": "cjld2cjxh0000qzrmn831i7rn",
    "prefixed number": "order-12345678",
}


@pytest.mark.parametrize("value", ID_SHAPES.values(), ids=ID_SHAPES.keys())
def test_every_id_shape_is_a_parameter_from_one_sample(value: str) -> None:
    result = PathTemplater().template("app", "GET", f"/api/orders/{value}")
    assert result.template == "/api/orders/{orderId}"
    assert result.params == {"orderId": value}


def test_dates_emails_and_tokens_are_named_for_their_kind() -> None:
    templater = PathTemplater()
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    opaque = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3A"  # base64url, 51 characters
    cases = {
        "/reports/2024-01-31": ("/reports/{date}", {"date": "2024-01-31"}),
        "/reports/2024-01": ("/reports/{date}", {"date": "2024-01"}),
        "/events/2024-01-31T10:15:00Z": ("/events/{date}", {"date": "2024-01-31T10:15:00Z"}),
        "/contacts/alice%40example.com": ("/contacts/{email}", {"email": "alice@example.com"}),
        "/contacts/bob.smith+tag@mail.example.org": (
            "/contacts/{email}",
            {"email": "bob.smith+tag@mail.example.org"},
        ),
        f"/invites/{jwt}": ("/invites/{token}", {"token": jwt}),
        f"/downloads/{opaque}": ("/downloads/{token}", {"token": opaque}),
    }
    for path, (template, params) in cases.items():
        result = templater.template("app", "GET", path)
        assert (result.template, result.params) == (template, params), path


@pytest.mark.parametrize(
    "segment",
    [
        "user-preferences",
        "getting-started",
        "getting-started-with-python3-and-django",
        "v1",
        "v2.1",
        "api",
        "2fa",
        "oauth2",
        "UserPreferencesSettingsPage",
        "getUserPreferencesForAccount",
        "index.html",
        "favicon.ico",
        "internationalization",
        "release-notes-2024",
        "abcdefabcdefabcdef",  # 18 letters a-f, no digit: a word, however odd
        "2024-13-45",  # no such date
        "me",
        "",
    ],
)
def test_words_slugs_and_versions_are_not_ids(segment: str) -> None:
    assert segment_marker(segment) is None
    path = f"/api/{segment}"
    assert PathTemplater().template("app", "GET", path).template == path


def test_literal_siblings_stay_distinct() -> None:
    templater = PathTemplater()
    siblings = ["users", "orders", "products", "user-preferences", "settings", "health"]
    for _ in range(3):
        for name in siblings:
            result = templater.template("app", "GET", f"/api/{name}")
            assert result.template == f"/api/{name}"
            assert result.params == {} and result.refined_from == ()


def test_collections_never_count_toward_a_fold() -> None:
    """Twelve REST collections under /api (more than the threshold) stay twelve endpoints:
    each has been seen followed by an id, which is what a collection looks like."""
    templater = PathTemplater(threshold=8)
    names = [
        "users", "orders", "products", "carts", "reviews", "coupons", "invoices",
        "payments", "shipments", "categories", "tags", "comments",
    ]  # fmt: skip
    for i, name in enumerate(names):
        assert templater.template("app", "GET", f"/api/{name}/{i + 1}").template == (
            f"/api/{name}/{{{singular(name)}Id}}"
        )
        assert templater.template("app", "GET", f"/api/{name}").template == f"/api/{name}"
    assert templater.stats()["folds"] == 0


def test_a_parameter_reveals_itself_after_several_samples() -> None:
    templater = PathTemplater(threshold=8)
    slugs = [
        "getting-started", "installation", "configuration", "routing", "deployment",
        "testing", "faq", "plugins", "theming", "security", "caching", "logging",
    ]  # fmt: skip
    given = []
    for slug in slugs[:8]:
        result = templater.template("app", "GET", f"/docs/{slug}")
        assert result.template == f"/docs/{slug}"  # a literal until the position proves itself
        given.append(result.template)
    ninth = templater.template("app", "GET", f"/docs/{slugs[8]}")
    assert ninth.template == "/docs/{docId}"
    assert ninth.params == {"docId": "theming"}
    assert sorted(ninth.refined_from) == sorted(given)  # every template handed out before
    for slug in slugs[9:] + slugs[:2]:  # new slugs and old ones alike, reported only once
        again = templater.template("app", "GET", f"/docs/{slug}")
        assert again.template == "/docs/{docId}" and again.refined_from == ()


def test_threshold_is_tunable() -> None:
    templater = PathTemplater(threshold=3)
    templates = [templater.template("app", "GET", f"/tags/tag-{w}").template for w in "abcd"]
    assert templates == ["/tags/tag-a", "/tags/tag-b", "/tags/tag-c", "/tags/{tagId}"]


def test_nested_learned_parameters_are_owner_and_entity() -> None:
    templater = PathTemplater(threshold=8)
    owners = [
        "octocat", "torvalds", "gvanrossum", "dhh", "antirez", "mitsuhiko",
        "kennethreitz", "tj", "sindresorhus", "yyx990803",
    ]  # fmt: skip
    refined: set[str] = set()
    last = None
    for i, owner in enumerate(owners):
        for repo in ("alpha", "beta"):
            last = templater.template("app", "GET", f"/repos/{owner}/{repo}-{i}")
            refined.update(last.refined_from)
    assert last is not None
    assert last.template == "/repos/{owner}/{repo}"
    assert last.params == {"owner": "yyx990803", "repo": "beta-9"}
    # the literal templates handed out before the fold were all reported
    assert "/repos/octocat/alpha-0" in refined and "/repos/tj/beta-7" in refined
    assert templater.template("app", "GET", "/repos/octocat/alpha-0").template == (
        "/repos/{owner}/{repo}"
    )


def test_ids_nested_under_ids() -> None:
    templater = PathTemplater()
    result = templater.template(
        "app", "GET", "/api/v1/users/42/orders/3f2504e0-4f89-11d3-9a0c-0305e82c3301/items/7"
    )
    assert result.template == "/api/v1/users/{userId}/orders/{orderId}/items/{itemId}"
    assert result.params == {
        "userId": "42",
        "orderId": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "itemId": "7",
    }


def test_parameter_names() -> None:
    templater = PathTemplater()
    cases = {
        "/categories/7": "/categories/{categoryId}",
        "/people/7": "/people/{personId}",
        "/addresses/7": "/addresses/{addressId}",
        "/branches/7": "/branches/{branchId}",
        "/order-items/7": "/order-items/{orderItemId}",
        "/api/v2/7": "/api/v2/{id}",
        "/7": "/{id}",
        "/pairs/7/8": "/pairs/{pairId}/{pairId2}",
        "/users/7/users/8": "/users/{userId}/users/{userId2}",
        "/files/42.json": "/files/{fileId}.json",
        "/status": "/status",
    }
    for path, template in cases.items():
        assert templater.template("app", "GET", path).template == template, path
    assert templater.template("app", "GET", "/files/42.json").params == {"fileId": "42"}


def test_scopes_and_methods_learn_separately() -> None:
    templater = PathTemplater(threshold=2)
    for word in ("a", "b", "c"):
        templater.template("app", "GET", f"/w/{word}")
    assert templater.template("app", "GET", "/w/d").template == "/w/{wId}"
    assert templater.template("app", "DELETE", "/w/d").template == "/w/d"
    assert templater.template("api.example.com", "GET", "/w/d").template == "/w/d"


def test_fold_reports_other_templates_on_their_next_event() -> None:
    """A fold can change templates other than the current event's: those are reported on the
    next event that gets each new template."""
    templater = PathTemplater(threshold=3)
    for word in ("a", "b", "c"):
        templater.template("app", "GET", f"/p/{word}/view")
        templater.template("app", "GET", f"/p/{word}/edit")
    folding = templater.template("app", "GET", "/p/d/view")
    assert folding.template == "/p/{pId}/view"
    assert sorted(folding.refined_from) == ["/p/a/view", "/p/b/view", "/p/c/view"]
    # the whole fold, for whoever must rewrite everything at once (persist)
    assert dict(folding.refinements) == {
        "/p/{pId}/view": ("/p/a/view", "/p/b/view", "/p/c/view"),
        "/p/{pId}/edit": ("/p/a/edit", "/p/b/edit", "/p/c/edit"),
    }
    assert templater.template("app", "GET", "/p/d/view").refinements == ()
    edit = templater.template("app", "GET", "/p/a/edit")
    assert edit.template == "/p/{pId}/edit"
    assert sorted(edit.refined_from) == ["/p/a/edit", "/p/b/edit", "/p/c/edit"]
    assert templater.template("app", "GET", "/p/b/edit").refined_from == ()


def test_pinned_templates_win() -> None:
    templater = PathTemplater(
        threshold=100, pinned=["/api/v1/{tenant}/items", "POST /hooks/{source}"]
    )
    result = templater.template("app", "GET", "/api/v1/acme/items")
    assert (result.template, result.params) == ("/api/v1/{tenant}/items", {"tenant": "acme"})
    assert templater.template("app", "POST", "/hooks/github").template == "/hooks/{source}"
    assert templater.template("app", "GET", "/hooks/github").template == "/hooks/github"


@pytest.mark.parametrize("spec", ["api/no-slash", "/a/{b", "/a/x{b}", "get /lower/method"])
def test_malformed_pinned_templates_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_pinned(spec)


def test_memory_is_bounded() -> None:
    templater = PathTemplater(threshold=10_000, cache_size=100, max_nodes=50, max_children=20)
    for i in range(2_000):
        templater.template("app", "GET", f"/a/word{i}x/{i}")
    stats = templater.stats()
    assert stats["nodes"] <= 50 and stats["cached"] <= 100
    # past the caps, ids are still templated by their shape
    assert templater.template("app", "GET", "/a/new/77").template == "/a/new/{newId}"


def test_odd_paths_do_not_break_it() -> None:
    templater = PathTemplater()
    assert templater.template("app", "OPTIONS", "*").template == "*"
    assert templater.template("app", "GET", "").template == "/"
    assert templater.template("app", "GET", "/").template == "/"
    assert templater.template("app", "GET", "//double//").template == "//double//"
    deep = "/" + "/".join(["x"] * 100) + "/42"
    assert templater.template("app", "GET", deep).template.endswith("/x/{xId}")
    assert templater.template("app", "GET", "/%zz/%E2%82%AC").template == "/%zz/%E2%82%AC"


def test_the_uuid_and_hash_shortcut_agrees_with_the_full_shape_test() -> None:
    # _plain_id spares the common ids the full shape test and the marker cache: where it says
    # "an id", _shape must too; and it must say so for every UUID and usual-length hash.
    rng = random.Random(3)
    ids = []
    for _ in range(5_000):
        ids.append(str(uuid.UUID(int=rng.getrandbits(128))))
        bits = rng.choice([96, 128, 160, 256])
        ids.append(f"{rng.getrandbits(bits) | 1 << (bits - 1):x}")  # full length, no lost 0s
    assert all(_plain_id(segment) for segment in ids)
    alphabet = "0123456789abcdefABCDEFghxz-_."
    others = [*ID_SHAPES.values(), "", "-" * 36, "g" * 24, "a" * 24, "a" * 16, "abcdef" * 6]
    for _ in range(20_000):
        length = rng.choice([16, 24, 32, 36, 40, 64, 65, rng.randrange(1, 70)])
        others.append("".join(rng.choice(alphabet) for _ in range(length)))
    for segment in ids + others:
        if _plain_id(segment):
            assert _shape(segment) == ID and segment_marker(segment) == ID, segment


def test_templates_do_not_depend_on_what_the_caches_hold() -> None:
    # The same paths through a templater whose caches hold almost nothing (so every segment is
    # classified and every path walked afresh) give the same results, folds included.
    rng = random.Random(5)
    words = ["users", "orders", "me", "v1", "api", "settings", "x.json", "cus_NffrFeUfNV2Hib"]
    paths = []
    for _ in range(3_000):
        ident = rng.choice(
            [
                str(rng.randrange(100)),
                str(uuid.UUID(int=rng.getrandbits(128))),
                f"{rng.getrandbits(96):024x}",
                f"w{rng.randrange(20)}",
                rng.choice(words),
            ]
        )
        paths.append(f"/api/{rng.choice(words)}/{ident}/{rng.choice(words)}")
    cached, uncached = PathTemplater(cache_size=20_000), PathTemplater(cache_size=1_000)
    for path in paths:
        uncached._cache.clear()
        uncached._markers.clear()
        uncached._walks.clear()
        assert cached.template("app", "GET", path) == uncached.template("app", "GET", path), path
