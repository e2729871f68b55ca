"""The cache of a remote catalog's answers: listings stay whole for the TTL after their last page,
and a change here forgets what it may have changed; a folder's names answer commits of new names."""

from __future__ import annotations

import pytest

from mldashfs import remote_answers
from mldashfs.remote_answers import KnownNames, RemoteAnswers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(remote_answers.time, "monotonic", c)
    return c


def test_pages_of_a_long_listing_stay_fresh_until_ttl_after_its_last_page(clock: Clock) -> None:
    answers, asked = RemoteAnswers(ttl=1.0), []

    def page(after: str | None, limit: int) -> list[str]:
        def fetch() -> list[str]:
            asked.append(after)
            rows = [f"f{i:03}" for i in range(100)]
            start = 0 if after is None else rows.index(after) + 1
            return rows[start:start + limit]
        return answers.page("list_stats", "a/b/c", after, limit, fetch)

    first = page(None, 40)
    clock.now += 0.8
    second = page(first[-1], 40)
    clock.now += 0.8  # the first page is 1.6 s old, but the listing's last page only 0.8 s
    third = page(second[-1], 40)
    assert len(third) == 20 and asked == [None, "f039", "f079"]
    assert page(None, 40) == first and page(first[-1], 10) == second[:10]  # from memory
    assert page(second[-1], 60) == third  # the end of the folder: a larger limit needs no fetch
    assert asked == [None, "f039", "f079"]
    clock.now += 1.1
    page(None, 40)
    assert asked[-1] is None and len(asked) == 4  # expired with the listing


def test_a_change_forgets_its_path_its_folders_and_their_listings(clock: Clock) -> None:
    answers, asked = RemoteAnswers(ttl=10.0), []

    def ask(method: str, path: str) -> object:
        return answers.point(method, path, lambda: asked.append((method, path)) or path)

    ask("lookup", "a/b/c/x")
    ask("lookup", "a/b/c")
    ask("lookup", "a/b/other")
    answers.page("list_stats", "a/b/c", None, 10, lambda: [asked.append(("list", "a/b/c"))] and [])
    answers.forget("a/b/c/x")
    ask("lookup", "a/b/c/x")
    ask("lookup", "a/b/c")
    ask("lookup", "a/b/other")  # still cached
    answers.page("list_stats", "a/b/c", None, 10, lambda: [asked.append(("list", "a/b/c"))] and [])
    assert asked.count(("lookup", "a/b/c/x")) == 2 and asked.count(("lookup", "a/b/c")) == 2
    assert asked.count(("lookup", "a/b/other")) == 1 and asked.count(("list", "a/b/c")) == 2


class Folder:
    """A remote folder's names, and how often they were listed."""

    def __init__(self, *names: str) -> None:
        self.names, self.listed = list(names), 0

    def __call__(self, folder: str, limit: int) -> list[str]:
        assert folder == "a/b/c/d"
        self.listed += 1
        return sorted(self.names)[:limit]


def test_new_names_in_a_listed_folder_are_absent_without_asking_again_until_the_ttl(clock: Clock) -> None:
    names, folder = KnownNames(ttl=1.0), Folder("old.json", "sub")
    assert names.absent("a/b/c/d/new0.json", folder)
    assert not names.absent("a/b/c/d/old.json", folder)
    assert not names.absent("a/b/c/d/sub", folder)
    for i in range(100):
        assert names.absent(f"a/b/c/d/new{i}.json", folder)
    assert folder.listed == 1
    folder.names.append("new0.json")  # another machine made it: seen once the TTL is over
    clock.now += 1.01
    assert not names.absent("a/b/c/d/new0.json", folder)
    assert folder.listed == 2


def test_a_folder_listed_with_entries_within_the_ttl_is_known_to_be_one(clock: Clock) -> None:
    names = KnownNames(ttl=1.0)
    assert not names.is_folder("a/b/c/d")  # never listed
    names.absent("a/b/c/d/x", Folder())
    assert not names.is_folder("a/b/c/d")  # listed empty: maybe no folder at all, or a file
    clock.now += 1.01
    names.absent("a/b/c/d/x", Folder("y"))
    assert names.is_folder("a/b/c/d")
    clock.now += 1.01
    assert not names.is_folder("a/b/c/d")  # too old to tell


def test_a_name_published_here_after_the_listing_is_not_absent(clock: Clock) -> None:
    names, folder = KnownNames(ttl=1.0), Folder()
    assert names.absent("a/b/c/d/x.json", folder)
    clock.now += 0.1
    names.published("a/b/c/d/x.json")  # the listing before it could not have it
    assert not names.absent("a/b/c/d/x.json", folder)
    clock.now += 1.0
    folder.names.append("x.json")
    assert not names.absent("a/b/c/d/x.json", folder)  # a listing after the publish has it
    assert folder.listed == 2


def test_a_folder_too_big_or_a_change_here_means_asking_by_name(clock: Clock) -> None:
    names, big = KnownNames(ttl=1.0, limit=10), Folder(*(f"f{i:02}" for i in range(10)))
    assert not names.absent("a/b/c/d/new", big)  # 10 names of a limit of 10: maybe more
    small = Folder("f")
    names.clear()
    assert names.absent("a/b/c/d/new", small)
    names.clear()  # a delete or rename made here
    assert names.absent("a/b/c/d/new", small)
    assert small.listed == 2


def test_an_answer_fetched_across_a_change_is_not_kept(clock: Clock) -> None:
    answers, asked = RemoteAnswers(ttl=10.0), []

    def fetch_across_a_change(answer: object) -> object:  # the change lands while the fetch is on the wire
        asked.append(answer)
        answers.forget("a/b/c/x")
        return answer

    assert answers.point("lookup", "a/b/c/x", lambda: fetch_across_a_change("old")) == "old"
    assert answers.point("lookup", "a/b/c/x", lambda: fetch_across_a_change("new")) == "new"  # asked again
    assert answers.page("list_stats", "a/b/c", None, 10, lambda: fetch_across_a_change(["old"])) == ["old"]
    assert answers.page("list_stats", "a/b/c", None, 10, lambda: ["new"]) == ["new"]
    assert answers.point("lookup", "a/b/c/x", lambda: "newest") == "newest"
    assert answers.point("lookup", "a/b/c/x", lambda: "not asked") == "newest"  # kept: nothing changed meanwhile
    assert asked == ["old", "new", ["old"]]
