"""Issue 16 in Chromium, at the till laptop's 1366 px and a phone's 390 px: a manager merges a
likely duplicate side by side, erases a member (PIPL) and prints a copy of a member's data;
marketing grants points to a saved audience in bulk; a manager dry-runs a legacy member file.
Each page is checked for what the user sees, no sideways scroll and no serious axe finding;
at 1366 px a screenshot of each main page goes to artifacts/screenshots/ for review."""
import itertools
import random

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS

SHOTS = SCREENSHOTS
SIZES = pytest.mark.parametrize("width, height", [(1366, 768), (390, 844)])
_serial = itertools.count(random.Random().randrange(10**5))


def unique(prefix: str) -> str:
    """A name no other test (or earlier run on this session's database) has used."""
    return f"{prefix}{next(_serial):05d}"


def looks_right(page, axe, width, shot_name=None):
    """Nothing scrolls sideways, axe finds nothing serious; at 1366 px a screenshot for review."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    found = axe(page)
    assert not found, str(found)
    if shot_name and width == 1366:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{shot_name}.png"), full_page=True)


def set_profile(live_server, member_id, **changes):
    from crm.core.actor import Actor
    from crm.members import service
    from crm.members.schemas import MemberUpdateSchema
    live_server.run(lambda: service.update(Actor.system("browser-test"), member_id,
                                           MemberUpdateSchema().load(changes)))


@SIZES
def test_a_manager_merges_a_likely_duplicate_side_by_side(new_page, login, axe, new_member, live_server,
                                                          width, height):
    name = unique("重复会员")
    survivor = new_member(name=name, points=120)
    dup = new_member(name=name, points=30, top_up="80")
    for m in (survivor, dup):
        set_profile(live_server, m["id"], birthday="1988-05-01")
    page = new_page(width=width, height=height)
    login(page, "manager")

    page.goto(f"/members/{survivor['id']}")
    box = page.locator("#duplicates")
    expect(box.get_by_role("heading", name="Possible duplicates")).to_be_visible()
    expect(box).to_contain_text(f"#{dup['id']}")
    expect(box).to_contain_text("same name and birthday")
    looks_right(page, axe, width, "member-with-duplicates")

    with page.expect_navigation():
        box.get_by_role("link", name="Merge into this member").click()
    assert page.url.endswith(f"/members/{survivor['id']}/merge?from={dup['id']}")
    expect(page.locator("#merge-fields")).to_contain_text(f"Duplicate (#{dup['id']})")
    expect(page.locator("#merge-fields")).to_contain_text(dup["mobile"])
    looks_right(page, axe, width, "merge-side-by-side")

    with page.expect_navigation():
        page.get_by_role("button", name="Merge", exact=True).click()
    expect(page.locator("#e-reason")).to_be_visible()
    expect(page.locator("#f-reason")).to_have_attribute("aria-invalid", "true")
    looks_right(page, axe, width, "merge-without-reason")

    page.fill("#f-reason", "同一位客人登记了两次")
    with page.expect_navigation():
        page.get_by_role("button", name="Merge", exact=True).click()
    assert page.url.endswith(f"/members/{survivor['id']}")
    expect(page.locator("#merged-members")).to_contain_text(f"#{dup['id']} {name}")
    expect(page.locator("#duplicates")).to_have_count(0)
    expect(page.locator("#points-available")).to_have_text("150")  # 120 + the duplicate's 30
    looks_right(page, axe, width, "merge-survivor")

    with page.expect_navigation():
        page.locator("#merged-members").get_by_role("link", name=f"#{dup['id']} {name}").click()
    expect(page.locator("#merged-into")).to_contain_text(f"Merged into member {name} (#{survivor['id']})")
    looks_right(page, axe, width, "merge-tombstone")
    with page.expect_navigation():
        page.locator("#merged-into").get_by_role("link", name="Open the survivor").click()
    assert page.url.endswith(f"/members/{survivor['id']}")


@SIZES
def test_a_manager_erases_a_member_and_prints_a_copy_of_the_data(new_page, login, axe, new_member, width, height):
    name = unique("抹除会员")
    m = new_member(name=name, points=250, top_up="100")
    page = new_page(width=width, height=height)
    login(page, "manager")

    page.goto(f"/members/{m['id']}")
    with page.expect_navigation():
        page.locator("#pipl-actions").get_by_role("link", name="Copy of data (PIPL)").click()
    looks_right(page, axe, width, "pipl-export-form")
    page.fill("#f-reason", "会员书面申请")
    with page.expect_navigation():
        page.get_by_role("button", name="Make the copy").click()
    copy = page.locator("#pipl-copy")
    expect(copy.get_by_role("heading", name=f"Personal data held about member #{m['id']}")).to_be_visible()
    expect(copy.get_by_role("heading", name="Consent history")).to_be_visible()
    expect(copy).to_contain_text(name)
    looks_right(page, axe, width, "pipl-export-copy")

    page.goto(f"/members/{m['id']}")
    with page.expect_navigation():
        page.locator("#pipl-actions").get_by_role("link", name="Erase (PIPL)").click()
    balances = page.locator("#balances")
    expect(balances).to_contain_text("250")
    expect(balances).to_contain_text("¥100.00")
    looks_right(page, axe, width, "pipl-erase")

    page.fill("#f-reason", "会员要求删除个人信息")
    with page.expect_navigation():
        page.get_by_role("button", name="Erase and settle the balances").click()
    assert page.url.endswith(f"/members/{m['id']}")
    expect(page.locator("#anonymised")).to_contain_text("Anonymised on ")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Member #{m['id']}")  # no name left to show
    expect(page.locator("#pipl-actions").get_by_role("link", name="Erase (PIPL)")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text(name)
    looks_right(page, axe, width, "pipl-erased-member")

    page.goto("/")
    page.fill("input[name=q]", name)
    with page.expect_navigation():
        page.press("input[name=q]", "Enter")
    expect(page.locator("main")).to_contain_text(f"No member matches “{name}”.")
    expect(page.locator(".member-results")).to_have_count(0)
    looks_right(page, axe, width)


@SIZES
def test_marketing_grants_points_to_a_saved_audience_in_bulk(new_page, login, axe, new_member, live_server,
                                                             width, height):
    from crm.campaigns import audiences
    from crm.core.actor import Actor
    tag = unique("批量")
    ids = [new_member(name=unique("批量会员"), card=False)["id"] for _ in range(3)]
    for member_id in ids:
        set_profile(live_server, member_id, tags=[tag])
    audience = unique("批量受众")
    live_server.run(lambda: audiences.save(Actor.system("browser-test"), {"name": audience,
                                                                          "filters": {"tags": [tag]}}).id)
    page = new_page(width=width, height=height)
    login(page, "marketing")

    page.goto("/bulk/")
    page.select_option("#f-audience_id", label=audience)
    page.select_option("#f-action", "points")
    page.fill("#f-points", "0")
    page.fill("#f-reason", "周年庆")
    with page.expect_navigation():
        page.get_by_role("button", name="Start").click()
    expect(page.locator("#e-points")).to_be_visible()
    expect(page.locator("#f-points")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-audience_id option:checked")).to_have_text(audience)  # the choice is kept
    looks_right(page, axe, width, "bulk-bad-points")

    page.fill("#f-points", "200")
    with page.expect_navigation():
        page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Grant points: 200")
    progress = page.locator(".import-progress")
    expect(progress).to_contain_text("Done")
    expect(progress).to_contain_text("3 of 3 members: 3 done, 0 skipped.")
    expect(page.get_by_role("region", name="Members").locator("tbody tr")).to_have_count(3)
    looks_right(page, axe, width, "bulk-job-done")


MEMBER_HEADER = "mobile,name,card_no,store_code,level,birthday,opening_points,opening_principal"


@SIZES
def test_a_manager_dry_runs_a_legacy_member_file_and_sees_the_bad_line(new_page, login, axe, unique_mobile,
                                                                        width, height):
    def upload(name, text):
        page.goto("/reports/imports")
        page.select_option("#f-kind", label="Members (legacy system)")
        page.set_input_files("#f-file", {"name": name, "mimeType": "text/csv", "buffer": text.encode()})
        page.get_by_label("Dry run: check every row, save nothing").check()
        with page.expect_navigation():
            page.get_by_role("button", name="Import").click()

    page = new_page(width=width, height=height)
    login(page, "manager")
    page.goto("/reports/imports")
    expect(page.locator("#member-columns")).to_be_visible()
    looks_right(page, axe, width, "imports-form")

    good = [f"{unique_mobile()},{unique('旧会员')},{random.randrange(10**9, 10**10)},BJ01,,1985-03-14,300,88.50"
            for _ in range(2)]
    upload("members.csv", MEMBER_HEADER + "\n" + "\n".join(good) + "\n")
    expect(page.get_by_role("heading", level=1)).to_contain_text("members.csv")
    expect(page.locator("main")).to_contain_text("Dry run, nothing saved: 2 rows checked, 0 with problems; "
                                                 "2 would be new, 0 skipped.")
    looks_right(page, axe, width, "imports-members-dry-run")

    bad = f"{unique_mobile()},{unique('旧会员')},{random.randrange(10**9, 10**10)},XX99,,1985-02-30,300,88.50"
    upload("members-bad.csv", MEMBER_HEADER + "\n" + good[0] + "\n" + bad + "\n")
    problems = page.get_by_role("region", name="Problems")
    row = problems.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").first).to_have_text("3")  # the header is line 1
    expect(row.locator("li")).to_have_count(2)  # the unknown store and the impossible birthday
    expect(page.locator("main")).to_contain_text("1 with a problem")
    looks_right(page, axe, width, "imports-members-bad-line")
