"""The Python SDK from the article PromptOS grew from, reconstructed as a compatibility
fixture: PromptOS keeps the seed's REST contract, so this client must keep working.

Only `headers` is used for authentication, exactly as the seed's client did.
"""
import time

import requests


class Prompts:
    def __init__(self, service_url, headers=None, cache_ttl=60):
        self.service_url = service_url if service_url.endswith("/") else service_url + "/"
        self.headers = headers or {}
        self.cache_ttl = cache_ttl
        self._cache = {}

    @classmethod
    def connect(cls, service_url, headers=None, cache_ttl=60):
        return cls(service_url, headers=headers, cache_ttl=cache_ttl)

    def get(self, prompt_name: str, env: str, **kwargs) -> str:
        """Retrieves and renders a prompt from the service for a specific environment."""
        cache_key = f"{prompt_name}:{env}"
        current_time = time.time()
        if cache_key in self._cache:
            timestamp, data = self._cache[cache_key]
            if current_time - timestamp < self.cache_ttl:
                return self._render(data, kwargs)
        try:
            response = requests.get(
                f"{self.service_url}prompts/{prompt_name}/deployed/",
                params={"environment": env},
                headers=self.headers,
            )
            response.raise_for_status()
            prompt_text = response.json()["prompt_text"]
            self._cache[cache_key] = (current_time, prompt_text)
            return self._render(prompt_text, kwargs)
        except requests.exceptions.RequestException as e:
            raise ConnectionError(f"Failed to connect to PromptOS service: {e}")

    @staticmethod
    def _render(template: str, variables: dict) -> str:
        for key, value in variables.items():
            template = template.replace("{{" + key + "}}", str(value))
        return template
