"""The Content-Security-Policy in a real browser: headless Chromium signs in to the admin and
opens its pages, the Swagger UI and Redoc, checks that each renders, and reads the browser
console for anything the policy refused. (The table page's lineage picture is checked the
same way in lineage/tests/test_picture.py.)

Needs Debian's chromium and chromium-driver, and selenium; skipped with the reason otherwise.
"""

import pytest

from governance.testing import (
    CHROMEDRIVER,
    CHROMIUM,
    NO_BROWSER,
    PASSWORD,
    csp_violations,
    headless_chromium,
    make_user,
)
from sources.models import DataSource

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=NO_BROWSER)
# Redoc's sidebar always loads its maker's logo from their CDN; the policy refuses it (the
# docs stay on this site) and Redoc hides the missing image. Nothing else may be refused.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture
def browser(live_server, transactional_db):
    pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    make_user("ada", superuser=True)
    driver = headless_chromium()
    driver.get(f"{live_server.url}/admin/login/?next=/admin/")
    driver.find_element(By.NAME, "username").send_keys("ada")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(driver, 30).until(lambda d: d.current_url.endswith("/admin/"))
    yield driver
    driver.quit()


def rendered(browser, url, selector, text):
    """Open url and wait until an element matching selector shows text."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 30, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: any(text in e.text for e in d.find_elements(By.CSS_SELECTOR, selector))
    )


def test_the_admin_and_the_api_docs_render_with_nothing_refused(browser, live_server):
    source = DataSource.objects.create(name="shop", kind="sqlite", database="shop.sqlite3")
    pages = [
        ("/admin/", "#content", "Data governance"),
        ("/admin/sources/datasource/", "#result_list", "shop"),
        (f"/admin/sources/datasource/{source.pk}/change/", "#content", "shop"),
        ("/admin/sources/datasource/add/", "#content", "Add data source"),
        ("/admin/governance/jobrun/", "#content", "Select job run"),
        ("/api/docs/", ".swagger-ui .info", "Steward API"),  # drawn from the fetched schema
        ("/api/redoc/", "#redoc-container h1, redoc h1, .api-info h1", "Steward API"),
    ]
    for path, selector, text in pages:
        rendered(browser, f"{live_server.url}{path}", selector, text)
        refused = csp_violations(browser)
        if path == "/api/redoc/":
            refused = [message for message in refused if REDOC_LOGO not in message]
        assert refused == [], path

    # The policy is in force: a script written into the page is refused, and reported.
    browser.execute_script(
        "const s = document.createElement('script');"
        "s.textContent = 'document.title = \"injected\"'; document.body.append(s);"
    )
    assert browser.title != "injected"
    assert any("inline script" in message for message in csp_violations(browser))
