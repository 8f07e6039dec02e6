"""Usage: check.py <service url> <api key>

Fetches `customer-support-agent` from production the way the seed's application did,
first with the API key in `headers`, then without it.
"""
import sys

from prompt_os import Prompts

url, key = sys.argv[1], sys.argv[2]
prompts = Prompts.connect(service_url=url, headers={"Authorization": f"Bearer {key}"})
print("with key:", prompts.get("customer-support-agent", env="production", customer_name="Alex"))
try:
    Prompts.connect(service_url=url).get("customer-support-agent", env="production", customer_name="Alex")
    print("without key: UNEXPECTEDLY SUCCEEDED")
except ConnectionError as e:
    print("without key:", e)
