"""Two-factor enrolment and sign-in in a real browser: headless Chromium signs in, reads the
key beside the QR code, confirms it with a code, keeps the recovery codes, signs out, and
signs in again with a recovery code. Screenshots go to the test's tmp dir.

Needs Debian's chromium and chromium-driver and selenium; skipped with the reason when they
are missing (as lineage/tests/test_picture.py is)."""

from base64 import b32decode

import pytest
from django_otp.oath import TOTP

from governance.testing import (
    CHROMEDRIVER,
    CHROMIUM,
    NO_BROWSER,
    PASSWORD,
    headless_chromium,
    make_user,
)

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=NO_BROWSER)


@pytest.fixture
def browser():
    pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    driver = headless_chromium()
    yield driver
    driver.quit()


def test_enrolment_and_sign_in_with_a_second_factor(
    browser, live_server, transactional_db, settings, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    settings.MFA_REQUIRED = True
    make_user("sam", roles=["Steward"], staff=True)
    wait = WebDriverWait(browser, 30)

    def sign_in():
        browser.get(f"{live_server.url}/admin/login/?next=/admin/")
        browser.find_element(By.NAME, "username").send_keys("sam")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        wait.until(lambda d: "/admin/mfa/" in d.current_url)

    sign_in()
    qr = browser.find_element(By.CSS_SELECTOR, ".mfa-qr svg")
    assert qr.size["width"] >= 100
    secret = browser.find_element(By.CSS_SELECTOR, ".mfa-secret").text.replace(" ", "")
    browser.save_screenshot(str(tmp_path / "mfa-enrol.png"))
    code = str(TOTP(b32decode(secret + "=" * (-len(secret) % 8))).token()).zfill(6)
    browser.find_element(By.ID, "id_code").send_keys(code)
    browser.find_element(By.CSS_SELECTOR, ".mfa-form input[type=submit]").click()
    codes = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".mfa-recovery-codes code"))
    recovery = [element.text for element in codes]
    assert len(recovery) == 10
    browser.save_screenshot(str(tmp_path / "mfa-recovery-codes.png"))
    browser.find_element(By.LINK_TEXT, "Continue").click()
    # The sign-in page's own address ends in ?next=/admin/: wait for the index itself.
    wait.until(lambda d: "Data governance | Steward" in d.title)

    browser.find_element(By.CSS_SELECTOR, "#logout-form button").click()
    wait.until(lambda d: "Logged out" in d.page_source)
    sign_in()
    assert browser.find_element(By.CSS_SELECTOR, ".mfa[data-step=verify]")
    browser.find_element(By.ID, "id_code").send_keys(recovery[0])
    browser.find_element(By.CSS_SELECTOR, ".mfa-form input[type=submit]").click()
    # The sign-in page's own address ends in ?next=/admin/: wait for the index itself.
    wait.until(lambda d: "Data governance | Steward" in d.title)
    assert (tmp_path / "mfa-enrol.png").stat().st_size > 5000
