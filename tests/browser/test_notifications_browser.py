"""The service-message templates page (issue 15.2) in a real browser: no serious accessibility
problem at 1366x768, no sideways scrolling on a tablet, and a bad placeholder shown on its field."""


def test_service_message_templates_page(page, new_page, login, axe, shot):
    login(page, "admin", lang="zh_CN")
    page.goto("/admin/notifications")
    assert page.locator("h1").first.inner_text() and page.locator("form[id^=t-]").count() == 12
    shot(page, "notifications-templates-1366", full_page=True)
    found = axe(page)
    assert not found, str(found)
    form = page.locator("#t-topup-sms")
    form.locator("textarea").fill("充值{amout}元")
    form.locator("button.primary").click()
    error = page.locator("#e-topup-sms-body")
    assert "amout" in error.inner_text()
    assert page.locator("#f-topup-sms-body").get_attribute("aria-invalid") == "true"
    shot(page, "notifications-templates-error")

    tablet = new_page(width=768, height=1024, is_mobile=True, has_touch=True)
    login(tablet, "marketing")
    tablet.goto("/admin/notifications")
    width = tablet.evaluate("() => document.documentElement.scrollWidth")
    shot(tablet, "notifications-templates-768", full_page=True)
    assert width <= 768, width
