"""schedule through functions-framework's real app, against the emulator."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.store import runs

PATH = "/api/calendar/schedule"
# 2030-06-03 is a Monday, far enough ahead that "now" never trims these windows.
SEARCH = {
    "timeZone": "America/New_York",
    "startDate": "2030-06-03",
    "days": 1,
    "workingHours": {"start": "09:00", "end": "11:00"},
    "stepMinutes": 30,
}


@pytest.fixture
def client(function_client):
    return function_client("schedule")


def post(client, body, status=200):
    response = client.post(PATH, json=body)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def starts(body):
    return [c["start"] for c in body["candidates"]]


def bookings(db):
    return sorted((doc.to_dict() for doc in db.collection("calendar_bookings").stream()), key=lambda d: d["start"])


def test_slot_search_returns_local_and_utc_times(client):
    body = post(client, {"slotSearch": SEARCH, "durationMinutes": 30})
    assert body == {
        "candidates": [
            {"start": "2030-06-03T09:00:00-04:00", "end": "2030-06-03T09:30:00-04:00",
             "startUtc": "2030-06-03T13:00:00Z", "endUtc": "2030-06-03T13:30:00Z"},
            {"start": "2030-06-03T09:30:00-04:00", "end": "2030-06-03T10:00:00-04:00",
             "startUtc": "2030-06-03T13:30:00Z", "endUtc": "2030-06-03T14:00:00Z"},
            {"start": "2030-06-03T10:00:00-04:00", "end": "2030-06-03T10:30:00-04:00",
             "startUtc": "2030-06-03T14:00:00Z", "endUtc": "2030-06-03T14:30:00Z"},
            {"start": "2030-06-03T10:30:00-04:00", "end": "2030-06-03T11:00:00-04:00",
             "startUtc": "2030-06-03T14:30:00Z", "endUtc": "2030-06-03T15:00:00Z"},
        ],
        "booking": None,
    }


def test_slot_search_across_spring_forward(client):
    # 2030-03-10 is the US spring-forward Sunday: 02:00-02:59 does not exist.
    search = {**SEARCH, "startDate": "2030-03-10", "workingDays": [7],
              "workingHours": {"start": "01:00", "end": "04:00"}, "durationMinutes": 60}
    body = post(client, {"slotSearch": search})
    assert [(c["start"], c["end"]) for c in body["candidates"]] == [
        ("2030-03-10T01:00:00-05:00", "2030-03-10T03:00:00-04:00"),  # one elapsed hour
        ("2030-03-10T01:30:00-05:00", "2030-03-10T03:30:00-04:00"),
        ("2030-03-10T03:00:00-04:00", "2030-03-10T04:00:00-04:00"),  # 03:30 would end at 04:30
    ]


def test_slot_search_across_midnight(client):
    # A Monday night shift: 22:00 Monday to 02:00 Tuesday, New York summer time.
    search = {**SEARCH, "workingDays": [1], "maxCandidates": 20,
              "workingHours": {"start": "22:00", "end": "02:00"}, "durationMinutes": 60, "stepMinutes": 60}
    body = post(client, {"slotSearch": search})
    assert [(c["start"], c["end"]) for c in body["candidates"]] == [
        ("2030-06-03T22:00:00-04:00", "2030-06-03T23:00:00-04:00"),
        ("2030-06-03T23:00:00-04:00", "2030-06-04T00:00:00-04:00"),
        ("2030-06-04T00:00:00-04:00", "2030-06-04T01:00:00-04:00"),
        ("2030-06-04T01:00:00-04:00", "2030-06-04T02:00:00-04:00"),
    ]


def test_request_busy_intervals_in_any_offset_are_excluded(client):
    search = {**SEARCH, "busy": [
        {"start": "2030-06-03T15:30:00+02:00", "end": "2030-06-03T16:00:00+02:00"},  # 09:30-10:00 EDT
        {"start": "2030-06-03T14:15:00Z", "end": "2030-06-03T14:20:00Z"},  # 10:15 EDT
    ]}
    assert starts(post(client, {"slotSearch": search})) == ["2030-06-03T09:00:00-04:00", "2030-06-03T10:30:00-04:00"]


def test_max_candidates_and_working_days(client):
    search = {**SEARCH, "days": 7, "workingDays": [3], "maxCandidates": 3}
    assert starts(post(client, {"slotSearch": search})) == [
        "2030-06-05T09:00:00-04:00", "2030-06-05T09:30:00-04:00", "2030-06-05T10:00:00-04:00"
    ]


def test_candidate_starts_keep_their_offsets_in_the_same_shape(client):
    body = post(client, {"candidateStarts": ["2030-06-03T16:00:00+02:00", "2030-06-03T09:00:00-04:00"],
                         "durationMinutes": 45})
    assert body == {
        "candidates": [
            {"start": "2030-06-03T09:00:00-04:00", "end": "2030-06-03T09:45:00-04:00",
             "startUtc": "2030-06-03T13:00:00Z", "endUtc": "2030-06-03T13:45:00Z"},
            {"start": "2030-06-03T16:00:00+02:00", "end": "2030-06-03T16:45:00+02:00",
             "startUtc": "2030-06-03T14:00:00Z", "endUtc": "2030-06-03T14:45:00Z"},
        ],
        "booking": None,
    }


def test_past_candidate_starts_are_not_offered(client):
    body = post(client, {"candidateStarts": ["2001-01-01T09:00:00Z", "2030-06-03T09:00:00Z"]})
    assert starts(body) == ["2030-06-03T09:00:00+00:00"]


def test_book_takes_the_first_free_slot_and_excludes_it_afterwards(client, db):
    first = post(client, {"slotSearch": SEARCH, "book": True, "title": "Intro call",
                          "attendees": [{"email": "ada@example.com", "displayName": "Ada"}]})
    booking = first["booking"]
    assert booking["start"] == "2030-06-03T09:00:00-04:00" and booking["end"] == "2030-06-03T09:30:00-04:00"
    assert booking["startUtc"] == "2030-06-03T13:00:00Z" and booking["calendarId"] == "primary"
    assert booking["status"] == "confirmed" and booking["backend"] == "firestore"
    assert booking["timeZone"] == "America/New_York" and booking["title"] == "Intro call"
    assert booking["createdAt"].endswith("Z") and booking["receiptId"] is None

    stored = db.collection("calendar_bookings").document(booking["id"]).get().to_dict()
    assert stored["start"] == dt.datetime(2030, 6, 3, 13, tzinfo=dt.timezone.utc)
    assert stored["attendees"] == [{"email": "ada@example.com", "displayName": "Ada"}]

    # The booked slot is now busy: neither offered nor booked again.
    second = post(client, {"slotSearch": SEARCH, "book": True})
    assert "2030-06-03T09:00:00-04:00" not in starts(second)
    assert second["booking"]["start"] == "2030-06-03T09:30:00-04:00"
    assert len(bookings(db)) == 2


def test_bookings_of_other_calendars_do_not_block(client, db):
    post(client, {"candidateStarts": ["2030-06-03T13:00:00Z"], "book": True, "calendarId": "room-a"})
    other = post(client, {"candidateStarts": ["2030-06-03T13:00:00Z"], "book": True, "calendarId": "room-b@example.com"})
    assert other["booking"]["calendarId"] == "room-b@example.com"
    assert post(client, {"candidateStarts": ["2030-06-03T13:00:00Z"], "calendarId": "room-a"})["candidates"] == []


def test_overlapping_slot_is_refused_and_adjacent_one_is_booked(client, db):
    post(client, {"candidateStarts": ["2030-06-03T09:00:00-04:00"], "durationMinutes": 60, "book": True})
    overlapping = client.post(PATH, json={"candidateStarts": ["2030-06-03T09:30:00-04:00"], "durationMinutes": 60, "book": True})
    assert overlapping.status_code == 409
    assert overlapping.get_json()["error"]["code"] == "conflict"
    adjacent = post(client, {"candidateStarts": ["2030-06-03T10:00:00-04:00"], "durationMinutes": 60, "book": True})
    assert adjacent["booking"]["start"] == "2030-06-03T10:00:00-04:00"
    assert [b["startLocal"] for b in bookings(db)] == ["2030-06-03T09:00:00-04:00", "2030-06-03T10:00:00-04:00"]


def test_booking_a_long_meeting_crossing_hours_blocks_every_hour(client, db):
    post(client, {"candidateStarts": ["2030-06-03T09:10:00Z"], "durationMinutes": 200, "book": True})
    # 12:20 is inside 09:10-12:30, three hour-locks later
    late = client.post(PATH, json={"candidateStarts": ["2030-06-03T12:20:00Z"], "durationMinutes": 5, "book": True})
    assert late.status_code == 409


def test_candidate_start_booking_takes_the_zone_from_the_lead(client, db):
    # The Operations page books a chosen slot this way.
    body = post(client, {"candidateStarts": ["2030-06-03T09:00:00-04:00"], "book": True,
                         "lead": {"timeZone": "America/New_York", "email": "ada@example.com"}})
    assert body["booking"]["timeZone"] == "America/New_York"
    assert body["booking"]["start"] == "2030-06-03T09:00:00-04:00"


def test_book_with_nothing_free_is_409(client, db):
    response = client.post(PATH, json={"slotSearch": {**SEARCH, "workingDays": [6]}, "book": True})
    assert response.status_code == 409
    assert bookings(db) == []


def _make_lead(db, run_id="run-1", lead_doc_id="lead-000003"):
    runs.run_ref(db, run_id).set({"name": run_id, "status": "idle", "totalLeads": 4})
    runs.lead_ref(db, run_id, lead_doc_id).set({"index": 3, "email": "ada@example.com", "status": "pending"})


def test_booking_for_a_lead_writes_a_calendar_book_receipt(client, db):
    _make_lead(db)
    body = post(client, {"slotSearch": SEARCH, "book": True, "runId": "run-1", "leadDocId": "lead-000003",
                         "title": "Demo", "lead": {"email": "ada@example.com", "firstName": "Ada"}})
    booking = body["booking"]
    assert booking["receiptId"] == "calendar-book-20300603T130000Z"
    receipt = runs.action_ref(db, "run-1", "lead-000003", booking["receiptId"]).get().to_dict()
    assert receipt["type"] == "calendar.book" and receipt["status"] == "booked"
    assert receipt["providerIds"] == {"bookingId": booking["id"], "eventId": None}
    assert receipt["idempotencyKey"] == "run-1:lead-000003:calendar-book-20300603T130000Z"
    assert (receipt["runId"], receipt["leadDocId"], receipt["leadIndex"]) == ("run-1", "lead-000003", 3)
    assert receipt["attempt"] == 1 and receipt["error"] is None
    assert "Demo" in receipt["summary"] and "2030-06-03T09:00:00-04:00" in receipt["summary"]
    stored = db.collection("calendar_bookings").document(booking["id"]).get().to_dict()
    assert stored["runId"] == "run-1" and stored["lead"] == {"email": "ada@example.com", "firstName": "Ada"}


def test_unknown_lead_is_404_and_books_nothing(client, db):
    _make_lead(db)
    response = client.post(PATH, json={"slotSearch": SEARCH, "book": True, "runId": "run-1", "leadDocId": "lead-000009"})
    assert response.status_code == 404
    assert bookings(db) == []
    assert list(db.collection("calendar_booking_locks").stream()) == []


def test_search_without_booking_writes_nothing(client, db):
    post(client, {"slotSearch": SEARCH})
    assert bookings(db) == [] and list(db.collection("calendar_booking_locks").stream()) == []


BAD_REQUESTS = [
    ({"candidateStarts": ["2030-06-03T09:00:00"]}, "candidateStarts.0"),
    ({"candidateStarts": [1906000000]}, "candidateStarts.0"),
    ({"candidateStarts": []}, "candidateStarts"),
    ({"candidateStarts": ["2030-06-03T09:00:00Z"] * 201}, "candidateStarts"),
    ({"candidateStarts": ["2030-06-03T09:00:00Z"], "slotSearch": SEARCH}, "slotSearch"),
    ({}, "slotSearch"),
    ({"book": True}, "slotSearch"),
    ({"slotSearch": {**SEARCH, "timeZone": "Mars/Olympus_Mons"}}, "slotSearch.timeZone"),
    ({"slotSearch": {**SEARCH, "timeZone": "../../etc/passwd"}}, "slotSearch.timeZone"),
    ({"slotSearch": {**SEARCH, "days": None, "endDate": "2030-06-02"}}, "slotSearch.endDate"),
    ({"slotSearch": {**SEARCH, "days": None, "endDate": "2031-06-04"}}, "slotSearch.endDate"),
    ({"slotSearch": {**SEARCH, "endDate": "2030-06-04"}}, "slotSearch.days"),
    ({"slotSearch": {**SEARCH, "days": 367}}, "slotSearch.days"),
    ({"slotSearch": {**SEARCH, "startDate": "June 3rd"}}, "slotSearch.startDate"),
    # 17:00-09:00 is a night shift now (test_slot_search_across_midnight); an empty span is not.
    ({"slotSearch": {**SEARCH, "workingHours": {"start": "00:00", "end": "00:00"}}}, "slotSearch.workingHours.end"),
    ({"slotSearch": {**SEARCH, "workingHours": {"start": "09:00", "end": "09:00"}}}, "slotSearch.workingHours.end"),
    ({"slotSearch": {**SEARCH, "workingHours": {"start": "24:00", "end": "24:00"}}}, "slotSearch.workingHours.start"),
    ({"slotSearch": {**SEARCH, "workingHours": {"start": "9am", "end": "17:00"}}}, "slotSearch.workingHours.start"),
    ({"slotSearch": {**SEARCH, "workingHours": {"start": "09:00", "end": "24:30"}}}, "slotSearch.workingHours.end"),
    ({"slotSearch": {**SEARCH, "workingDays": [0]}}, "slotSearch.workingDays.0"),
    ({"slotSearch": {**SEARCH, "workingDays": [1, 1]}}, "slotSearch.workingDays"),
    ({"slotSearch": {**SEARCH, "workingDays": []}}, "slotSearch.workingDays"),
    ({"slotSearch": {**SEARCH, "stepMinutes": 1}}, "slotSearch.stepMinutes"),
    ({"slotSearch": {**SEARCH, "maxCandidates": 0}}, "slotSearch.maxCandidates"),
    ({"slotSearch": {**SEARCH, "maxCandidates": 101}}, "slotSearch.maxCandidates"),
    ({"slotSearch": {**SEARCH, "minNoticeMinutes": -5}}, "slotSearch.minNoticeMinutes"),
    ({"slotSearch": {**SEARCH, "busy": [{"start": "2030-06-03T10:00:00Z", "end": "2030-06-03T09:00:00Z"}]}}, "slotSearch.busy.0.end"),
    ({"slotSearch": {**SEARCH, "busy": [{"start": "2030-06-03T10:00:00", "end": "2030-06-03T11:00:00Z"}]}}, "slotSearch.busy.0.start"),
    ({"slotSearch": {**SEARCH, "busy": [{"start": "2030-06-03T10:00:00Z", "end": "2030-06-03T11:00:00Z"}] * 5001}}, "slotSearch.busy"),
    ({"slotSearch": {**SEARCH, "durationMinutes": 45}, "durationMinutes": 30}, "durationMinutes"),
    ({"slotSearch": SEARCH, "durationMinutes": 0}, "durationMinutes"),
    ({"slotSearch": SEARCH, "durationMinutes": 1441}, "durationMinutes"),
    ({"slotSearch": SEARCH, "durationMinutes": "30"}, "durationMinutes"),
    ({"slotSearch": SEARCH, "book": "yes"}, "book"),
    ({"slotSearch": SEARCH, "runId": "run-1"}, "leadDocId"),
    ({"slotSearch": SEARCH, "runId": "a/b", "leadDocId": "lead-1"}, "runId"),
    ({"slotSearch": SEARCH, "calendarId": "team|x"}, "calendarId"),
    ({"slotSearch": SEARCH, "attendees": [{"email": "not an address"}]}, "attendees.0.email"),
    ({"slotSearch": SEARCH, "title": ""}, "title"),
    ({"slotSearch": SEARCH, "lead": {"timeZone": "Nowhere/Else"}}, "lead.timeZone"),
    ({"slotSearch": {**SEARCH, "colour": "blue"}}, "slotSearch.colour"),
    ({"slotSearch": SEARCH, "candidate_start": "x"}, "candidate_start"),
    ([SEARCH], "(body)"),
]


@pytest.mark.parametrize("payload, field", BAD_REQUESTS)
def test_bad_input_is_400_naming_the_field_and_writes_nothing(client, db, payload, field):
    # book: true unless the case says otherwise, so a rule that failed open would write.
    response = client.post(PATH, json={"book": True, **payload} if isinstance(payload, dict) else payload)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "invalid_argument"
    assert field in [d["field"] for d in error["details"]], error["details"]
    assert bookings(db) == []


def test_wrong_method_media_type_and_json(client):
    wrong = client.get(PATH)
    assert wrong.status_code == 405 and "POST" in wrong.headers["Allow"]
    assert client.post(PATH, data="x", content_type="text/plain").status_code == 415
    broken = client.post(PATH, data="{nope", content_type="application/json")
    assert broken.status_code == 400 and broken.headers["Cache-Control"] == "no-store"
