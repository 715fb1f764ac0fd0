"""Drives the console in a real headless Chromium (Debian's chromium and chromium-driver,
through Selenium's WebDriver): signs in, reads the overview, approves the pending
service_rollback on a phone-width screen, follows the incident until it closes, and checks
that untrusted text holding <script> is shown and never run, then asks the chat page a
question and reads the streamed answer. Saves a screenshot of each
step and prints one JSON object for the Rust test.

    browser.py BASE_URL TOKEN SERVICE SCREENSHOT_DIR
"""

import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

base, token, service, shots = sys.argv[1:5]
os.makedirs(shots, exist_ok=True)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
out = {"screenshots": []}


def shot(name):
    path = os.path.join(shots, f"{name}.png")
    driver.save_screenshot(path)
    out["screenshots"].append(path)


def wait_for(css, seconds=90):
    """The element once it is there: a form post (an approval runs the call) takes a while."""
    return WebDriverWait(driver, seconds).until(seen.presence_of_element_located((By.CSS_SELECTOR, css)))


def text():
    return driver.find_element(By.TAG_NAME, "body").text


try:
    # A phone: on-call approvals happen there.
    driver.set_window_size(390, 844)
    driver.get(f"{base}/console")
    out["redirected_to_login"] = driver.current_url.endswith("/console/login")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for("nav")
    out["overview_has_service"] = service in text()
    out["scroll_width"] = driver.execute_script("return document.documentElement.scrollWidth")
    paints = driver.execute_script(
        "return performance.getEntriesByType('paint').map(p => [p.name, p.startTime])"
    )
    out["paint_ms"] = dict(paints)
    shot("1-overview")
    # A second load, warm, for the first-paint figure the note reports.
    samples = []
    for _ in range(5):
        driver.get(f"{base}/console")
        p = driver.execute_script(
            "const e = performance.getEntriesByName('first-contentful-paint')[0]; return e ? e.startTime : null"
        )
        if p is not None:
            samples.append(p)
    out["first_contentful_paint_ms"] = samples

    driver.get(f"{base}/console/approvals")
    card = next(
        (c for c in driver.find_elements(By.CSS_SELECTOR, "section.card")
         if "service_rollback" in c.text and service in c.text),
        None,
    )
    if card is None:
        shot("2-no-approval")
        raise SystemExit(f"no pending service_rollback for {service} at {driver.current_url}:\n{text()}")
    out["approval_id"] = card.get_attribute("id")
    shot("2-approval")
    card.find_element(By.CSS_SELECTOR, "button[name=approve]").click()
    out["flash"] = wait_for(".flash").text
    shot("3-approved")

    deadline = time.time() + 90
    status = None
    while time.time() < deadline:
        driver.get(f"{base}/console/incidents?all=true")
        row = next((r for r in driver.find_elements(By.CSS_SELECTOR, "tbody tr") if service in r.text), None)
        if row is not None:
            status = row.find_elements(By.TAG_NAME, "td")[1].text
            if status == "resolved":
                row.find_element(By.TAG_NAME, "a").click()
                WebDriverWait(driver, 30).until(seen.url_contains("/console/incidents/in-"))
                wait_for("main ol")
                break
        time.sleep(1)
    out["incident_status"] = status
    out["incident_page"] = text()
    out["pwned"] = driver.execute_script("return window.__pwned === 1 || document.title === 'pwned'")
    out["script_shown_as_text"] = "<script>" in text()
    shot("4-incident")

    # The chat page: a question streamed back and shown as text.
    driver.get(f"{base}/console/chat")
    box = driver.find_element(By.ID, "chat-text")
    box.send_keys("which services are running?")
    driver.find_element(By.CSS_SELECTOR, "#chat-form button").click()
    deadline = time.time() + 120
    while time.time() < deadline:
        said = [p.text for p in driver.find_elements(By.CSS_SELECTOR, "#chat-log p.say, #chat-log p.step")]
        if said and driver.find_element(By.CSS_SELECTOR, "#chat-form button").is_enabled():
            break
        time.sleep(0.5)
    out["chat"] = [p.text for p in driver.find_elements(By.CSS_SELECTOR, "#chat-log p")]
    shot("5-chat")
finally:
    driver.quit()
print(json.dumps(out))
