"""Chat completions from an OpenAI-compatible endpoint, with the interface of `sampling.Engine`.

`EndpointEngine.chat(conversations, params)` takes the vLLM SamplingParams that
`sampling.sampling_params` builds and sends one chat request per conversation (seed included),
a few at a time. Every finished request is saved at once as one JSON file in the cache folder,
named by the hash of what decides its answer (model name, messages, sampling settings; not the
URL or the key). So a judge that was interrupted, or rerun after a code change that left its
requests alike, sends only the requests that have no answer yet.

The API key is read from the environment variable the config names, and is never written to a
cache file, an error message or the step's log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Sequence

from alignlab.artifacts import atomic_path
from alignlab.sampling import Completion, Conversation, timed

DUMMY_KEY = "unused"  # what a server started without --api-key is sent


class EndpointError(RuntimeError):
    pass


def request_fields(conversation: Conversation, params: Any, model: str) -> dict[str, Any]:
    """What decides a request's answer, from a vLLM SamplingParams: the cache key's contents."""
    structured = getattr(params, "structured_outputs", None)
    return {
        "model": model,
        "messages": [dict(m) for m in conversation],
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "seed": params.seed,
        "stop": list(params.stop or []),
        "regex": getattr(structured, "regex", None),
    }


def request_key(fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class EndpointEngine:
    """Sends chats to `base_url` (e.g. http://127.0.0.1:8000/v1) for the served model `model`.

    `http_client` is passed to the OpenAI client as is (tests use it to watch requests).
    """

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        model: str,
        cache_dir: str | os.PathLike,
        api_key_env: str | None = None,
        max_retries: int = 5,
        timeout_s: float = 300,
        concurrency: int = 4,
        structured_outputs: bool = False,
        http_client: Any = None,
    ):
        import openai

        self.name, self.base_url, self.model = name, base_url, model
        self.cache_dir = Path(cache_dir)
        self.concurrency = concurrency
        self.structured_outputs = structured_outputs
        self._key = _api_key(name, api_key_env)
        # The SDK retries connection errors, timeouts and HTTP 408, 409, 429 and 5xx responses
        # itself, with exponential backoff: 0.5 s * 2^n, at most 8 s, minus up to 25% jitter,
        # or the server's Retry-After when given (openai 3.57.0, _base_client.py:
        # _should_retry, _calculate_retry_timeout). Other errors (400, 401...) are not retried.
        self.client = openai.OpenAI(
            base_url=base_url, api_key=self._key or DUMMY_KEY, max_retries=max_retries,
            timeout=timeout_s, http_client=http_client,
        )
        self.sent = 0  # requests answered by the endpoint (retries not counted)
        self.cache_hits = 0  # requests answered from the cache

    def __repr__(self) -> str:  # no key in reprs, which tracebacks may print
        return f"EndpointEngine({self.name!r}, {self.base_url!r}, model={self.model!r})"

    @property
    def where(self) -> str:
        return f"endpoint '{self.name}' ({self.base_url}, model '{self.model}')"

    def chat(
        self,
        conversations: Sequence[Conversation],
        params: Sequence[Any],
        adapter_dir: str | None = None,
        progress: bool = True,
        stage: str = "endpoint requests",
    ) -> list[Completion]:
        """Complete each conversation with its own SamplingParams (one per conversation)."""
        start = time.perf_counter()
        if len(conversations) != len(params):
            raise ValueError("one SamplingParams per conversation is required")
        if adapter_dir:
            raise ValueError(f"{self.where} serves its own model; it cannot apply adapter {adapter_dir}")
        requests = {}  # key -> fields; identical requests are sent once
        keys = []
        for conv, p in zip(conversations, params):
            fields = request_fields(conv, p, self.model)
            if fields["regex"] and not self.structured_outputs:
                raise ValueError(
                    f"{self.where}: a request needs a regex constraint, but the endpoint is not "
                    "marked structured_outputs: true"
                )
            keys.append(request_key(fields))
            requests[keys[-1]] = fields
        answers = {k: c for k in requests if (c := self._cached(k)) is not None}
        hits = sum(k in answers for k in keys)
        todo = {k: fields for k, fields in requests.items() if k not in answers}
        self.cache_hits += hits
        answers.update(self._send_all(todo, progress))
        print(
            f"{self.where}: {len(todo)} requests sent, {hits} answered from the cache "
            f"({self.cache_dir})",
            file=sys.stderr, flush=True,
        )
        return timed(stage, start, [answers[k] for k in keys])

    # ---- requests ---------------------------------------------------------------------------

    def _send_all(self, requests: dict[str, dict], progress: bool) -> dict[str, Completion]:
        from tqdm import tqdm

        done = {}
        with (
            ThreadPoolExecutor(self.concurrency) as pool,
            tqdm(total=len(requests), disable=not progress or not requests,
                 desc=f"endpoint {self.name}") as bar,
        ):
            futures = {pool.submit(self._send, k, fields): k for k, fields in requests.items()}
            try:
                for future in as_completed(futures):
                    done[futures[future]] = future.result()
                    bar.update()
            except BaseException:
                # Stop sending; requests already running finish and are cached.
                for future in futures:
                    future.cancel()
                raise
        return done

    def _send(self, key: str, fields: dict[str, Any]) -> Completion:
        import openai

        body = {k: fields[k] for k in ("model", "messages", "temperature", "top_p", "seed")}
        body["max_completion_tokens"] = fields["max_tokens"]
        if fields["stop"]:
            body["stop"] = fields["stop"]
        extra = {"structured_outputs": {"regex": fields["regex"]}} if fields["regex"] else None
        try:
            response = self.client.chat.completions.create(**body, extra_body=extra)
        except openai.OpenAIError as err:
            raise EndpointError(f"{self.where}: request failed: {self._describe(err)}") from None
        if not response.choices:
            raise EndpointError(f"{self.where}: the response has no choices")
        choice, usage = response.choices[0], response.usage
        completion = Completion(
            text=choice.message.content or "",
            finish_reason=str(choice.finish_reason),
            n_prompt_tokens=usage.prompt_tokens if usage else 0,
            n_output_tokens=usage.completion_tokens if usage else 0,
        )
        self._store(key, fields, completion)
        self.sent += 1
        return completion

    def _describe(self, err: Exception) -> str:
        """The error and its cause (e.g. connection refused), with the key blanked out in case a
        server echoes it."""
        text = f"{type(err).__name__}: {err}"
        if err.__cause__ is not None:
            text += f" ({type(err.__cause__).__name__}: {err.__cause__})"
        return text.replace(self._key, "***") if self._key else text

    # ---- cache ------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.json"

    def _cached(self, key: str) -> Completion | None:
        try:
            record = json.loads(self._path(key).read_text(encoding="utf-8"))
            return Completion(**record["completion"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _store(self, key: str, fields: dict[str, Any], completion: Completion) -> None:
        record = {"request": fields, "completion": dataclasses.asdict(completion)}
        with atomic_path(self._path(key)) as tmp:
            tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")


def _api_key(name: str, api_key_env: str | None) -> str | None:
    if api_key_env is None:
        return None
    key = os.environ.get(api_key_env, "")
    if not key:
        raise EndpointError(
            f"endpoint '{name}': environment variable {api_key_env} (its api_key_env) is not set"
        )
    return key
