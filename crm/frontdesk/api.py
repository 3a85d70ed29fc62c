"""JSON API of the hotel front desk: reservations from the PMS (one, or a CSV) and the arrivals list."""
from flask import current_app, g, request
from flask_babel import gettext as _

from ..auth.access import allow
from ..auth.roles import MEMBER_DESK
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..errors import Invalid
from . import service
from .schemas import (
    ArrivalsQuery,
    ArrivalsSchema,
    ReservationImportArgs,
    ReservationImportSchema,
    ReservationInSchema,
    ReservationSchema,
)

blp = Blueprint("frontdesk_api", __name__, url_prefix="/api/v1", description="Hotel front desk: reservations, "
                                                                            "arrivals")


@blp.route("/reservations", methods=["POST"])
@allow(MEMBER_DESK)
@unit_of_work(idempotent=True)
@blp.arguments(ReservationInSchema)
@blp.response(200, ReservationSchema, description="an update of a reservation already known")
@blp.alt_response(201, schema=ReservationSchema, description="a new reservation")
def post_reservation(data):
    """One reservation from the PMS, new (201) or changed (200): the same store_code and
    reservation_no sent again update it, never duplicate it (status booked, cancelled or
    checked_in). The guest is a member when member_id, card_no or member_mobile names one
    (in that order; a merged duplicate's go to the survivor); 422 `unknown_member` when the
    one named is not a member, `unknown_store` / `not_a_hotel`, `departure_before_arrival`,
    `guest_name_required` for a guest who is not a member and has no name."""
    reservation, created = service.save(g.actor, data)
    return service.shown(reservation), 201 if created else 200


_FILE_BODY = {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}}}}


@blp.route("/imports/reservations", methods=["POST"])
@allow(MEMBER_DESK)
@unit_of_work()
@blp.arguments(ReservationImportArgs, location="query")
@blp.response(200, ReservationImportSchema)
@blp.doc(requestBody=_FILE_BODY)
def import_reservations(args):
    """Reservations from the PMS as a CSV in UTF-8 or GBK/GB18030, the body (text/csv) or the part
    `file` of a form: columns reservation_no, store_code, arrival, departure, guest_name?,
    member_id?, card_no?, member_mobile?, rooms?, room_type?, status?, notes? (any order), each
    row checked as POST /reservations checks one. Imported at once (up to 5,000 rows and 2 MB:
    422 `too_many_rows`, `file_too_large`). A bad encoding or header is 422; bad rows are
    422 `bad_rows` with every one in `details.errors` ({line, message, problems}) and nothing
    saved, unless `skip_bad_rows`: then the good rows are saved and the bad ones listed."""
    request.max_content_length = current_app.config["IMPORT_MAX_BYTES"]
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise Invalid(_("Choose a CSV file."), code="missing_file", field="file")
        raw = upload.read(service.IMPORT_MAX_BYTES + 1)
    else:
        raw = request.get_data()
    return service.import_csv(g.actor, raw, skip_bad_rows=args["skip_bad_rows"])


@blp.route("/arrivals")
@allow(MEMBER_DESK)
@blp.arguments(ArrivalsQuery, location="query")
@blp.response(200, ArrivalsSchema)
def arrivals(args):
    """A hotel's arrivals on a day (today in the hotel's time zone by default; any date may be
    asked for): every reservation not cancelled, frequent guests first (level, then stays this
    year), with each member's level, stays this year, a birthday falling within the stay,
    preferences and notes beside the PMS's notes, room type and nights."""
    store = _store(args["store_code"])
    day = args["date"] or service.today_of(store)
    return {"store_code": store.code, "date": day, "today": service.today_of(store),
            "frequent_stays": service.FREQUENT_STAYS, "items": service.arrivals(store, day)}


def _store(code):
    if code:
        return service.hotel(code)
    store = service.default_hotel(g.actor)
    if store is None:
        raise Invalid(_("There is no hotel."), code="unknown_store", field="store_code")
    return store
