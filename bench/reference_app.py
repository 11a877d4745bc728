"""The bare reference of bench_api.py: a minimal FastAPI app that reads the same rows
with the sqlite3 module, no authentication, no policy, no ORM. Our API's figures are
reported as a ratio to this."""

from __future__ import annotations

import os
import sqlite3

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

DB_PATH = os.environ["BENCH_SQLITE_PATH"]
conn = sqlite3.connect(DB_PATH, check_same_thread=False)
conn.row_factory = sqlite3.Row
app = FastAPI()


@app.get("/deal/{deal_id}")
async def deal(deal_id: int) -> Response:
    row = conn.execute("SELECT * FROM deals WHERE id = ?", (deal_id,)).fetchone()
    return Response(orjson.dumps(dict(row)), media_type="application/json")


@app.get("/deals")
async def deals(team_id: int, stage_id: int) -> Response:
    rows = conn.execute(
        "SELECT * FROM deals WHERE team_id = ? AND stage_id = ? AND status = 'open' ORDER BY id DESC LIMIT 51",
        (team_id, stage_id),
    ).fetchall()
    return Response(orjson.dumps({"items": [dict(r) for r in rows[:50]]}), media_type="application/json")
