"""The lineage picture in a real browser: headless Chromium logs into the admin, opens a
table's page, waits for the SVG the page's script draws, checks the nodes and edge styles
(pending dashed, approved solid), expands the depth, and keeps a screenshot.

Needs Debian's chromium and chromium-driver (`apt-get install -y chromium chromium-driver`)
and selenium; skipped with the reason when they are missing. Set
STEWARD_UPDATE_SCREENSHOTS=1 to refresh the reference copy in docs/img/lineage-admin.png.
"""

import os
import shutil
from pathlib import Path

import pytest

from catalog.models import Table
from governance.services import grant
from governance.testing import (
    CHROMEDRIVER,
    CHROMIUM,
    NO_BROWSER,
    PASSWORD,
    csp_violations,
    headless_chromium,
    make_user,
)
from lineage.models import Origin
from lineage.services import EdgeSpec, Evidence, record_edges
from sources.models import DataSource

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "img" / "lineage-admin.png"

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=NO_BROWSER)


@pytest.fixture
def browser():
    pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    driver = headless_chromium()
    yield driver
    driver.quit()


@pytest.fixture
def lineage_world(transactional_db):
    """raw -> orders (approved, manual) -> report (pending, inferred) -> dashboard
    (approved), and hr.salaries -> orders, which the viewer of shop may not see."""
    shop = DataSource.objects.create(name="shop", kind="sqlite", database="shop.db")
    hr = DataSource.objects.create(name="hr", kind="sqlite", database="hr.db")
    raw, orders, report, dashboard = (
        Table.objects.create(source=shop, schema="main", name=name)
        for name in ("orders_raw", "orders", "orders_report", "sales_dashboard")
    )
    salaries = Table.objects.create(source=hr, schema="main", name="salaries")

    def manual(up, down):
        return record_edges(
            [EdgeSpec(up, down, Evidence(kind="manual", key="user:0"))], origin=Origin.MANUAL
        )[0][0]

    def sql(up, down, text):
        return record_edges(
            [EdgeSpec(up, down, Evidence(kind="sql", key=text[:20], snippet=text))],
            origin=Origin.INFERRED,
        )[0][0]

    approved = manual(raw, orders)
    pending = sql(orders, report, "insert into orders_report select * from orders")
    manual(report, dashboard)
    sql(salaries, orders, "insert into orders select * from salaries")
    user = make_user("viola", staff=True)
    grant(shop, user, "viewer")
    return {
        "user": user,
        "raw": raw,
        "orders": orders,
        "report": report,
        "dashboard": dashboard,
        "approved": approved,
        "pending": pending,
    }


def style(driver, element, prop):
    return driver.execute_script(
        "return getComputedStyle(arguments[0]).getPropertyValue(arguments[1])", element, prop
    )


def test_lineage_picture_in_headless_chromium(browser, live_server, lineage_world, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    world = lineage_world
    page = f"/admin/catalog/table/{world['orders'].pk}/change/"
    browser.get(f"{live_server.url}/admin/login/?next={page}")
    browser.find_element(By.NAME, "username").send_keys(world["user"].username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.current_url.endswith(page))

    def drawn(depth):
        return wait.until(
            lambda d: d.find_element(
                By.CSS_SELECTOR, f".lineage-picture[data-state=ready][data-depth='{depth}'] svg"
            )
        )

    svg = drawn(1)
    nodes = {
        int(n.get_attribute("data-table-id"))
        for n in svg.find_elements(By.CSS_SELECTOR, "g.lineage-node[data-table-id]")
    }
    assert nodes == {world["raw"].pk, world["orders"].pk, world["report"].pk}
    root = svg.find_element(By.CSS_SELECTOR, "g.lineage-node--root")
    assert root.get_attribute("data-table-id") == str(world["orders"].pk)
    hidden = svg.find_element(By.CSS_SELECTOR, "g.lineage-node--hidden")
    assert hidden.text == "1 hidden"
    assert "salaries" not in browser.page_source

    approved = svg.find_element(
        By.CSS_SELECTOR, f"path.lineage-edge[data-edge-id='{world['approved'].pk}']"
    )
    pending = svg.find_element(
        By.CSS_SELECTOR, f"path.lineage-edge[data-edge-id='{world['pending'].pk}']"
    )
    assert approved.get_attribute("data-status") == "approved"
    assert pending.get_attribute("data-status") == "pending"
    assert style(browser, approved, "stroke-dasharray") == "none"
    assert style(browser, pending, "stroke-dasharray") in ("6px, 4px", "6, 4", "6px 4px")
    assert style(browser, approved, "stroke") == "rgb(46, 125, 50)"
    assert style(browser, pending, "stroke") == "rgb(230, 81, 0)"
    legend = svg.find_element(By.CSS_SELECTOR, ".lineage-legend").text
    assert "approved" in legend and "pending" in legend
    summary = browser.find_element(By.CSS_SELECTOR, ".lineage-summary").text
    assert "upstream: 1 table(s), 1 edge(s), 1 hidden" in summary

    panel = browser.find_element(By.ID, "lineage")
    browser.execute_script("arguments[0].scrollIntoView()", panel)
    shot = tmp_path / "lineage-admin.png"
    assert panel.screenshot(str(shot)) and shot.stat().st_size > 5000
    browser.save_screenshot(str(tmp_path / "lineage-admin-page.png"))
    if os.environ.get("STEWARD_UPDATE_SCREENSHOTS"):
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, REFERENCE)

    # Expanding to depth 2 brings the dashboard behind the report.
    Select(browser.find_element(By.CSS_SELECTOR, ".lineage-depth")).select_by_value("2")
    svg = drawn(2)
    assert svg.find_elements(
        By.CSS_SELECTOR, f"g.lineage-node[data-table-id='{world['dashboard'].pk}']"
    )
    assert len(svg.find_elements(By.CSS_SELECTOR, "path.lineage-edge[data-edge-id]")) == 3
    assert csp_violations(browser) == []  # the picture draws under the Content-Security-Policy
