"""Cross-cutting pieces every domain uses: money, time, idempotency, audit, paging."""
