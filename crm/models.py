"""Imports every model so metadata is complete (for migrations and create_all)."""
from .auth.models import ApiToken, Staff  # noqa: F401
from .campaigns.models import Audience, Campaign, CampaignRun, CustomHoliday, Delivery, MessageTemplate  # noqa: F401
from .cards.models import Card, CardFee  # noqa: F401
from .catalog.models import Item, ItemLevelPrice, Promotion, item_stores  # noqa: F401
from .checkout.models import Checkout, CheckoutLine  # noqa: F401
from .core.audit import AuditEntry  # noqa: F401
from .core.idempotency import IdempotencyKey  # noqa: F401
from .core.refcache import CacheVersion  # noqa: F401
from .corporate import models as corporate_models  # noqa: F401
from .coupons.models import Coupon, CouponDefinition, DrawPrize, DrawTicket, GiftRule  # noqa: F401
from .dayend import models as dayend_models  # noqa: F401
from .frontdesk import models as frontdesk_models  # noqa: F401
from .members.merge_models import MemberMerge  # noqa: F401
from .members.models import Company, Member, MemberLevel, MemberTag  # noqa: F401
from .members.pipl_models import PrivacyRequest  # noqa: F401
from .notifications.models import Notification, NotificationTemplate  # noqa: F401
from .points.models import PointsAccount, PointsEntry, PointsLot, PointsLotUse  # noqa: F401
from .programme.models import Setting  # noqa: F401
from .reports.models import Check, Stay  # noqa: F401
from .stays import models as stays_models  # noqa: F401
from .stores.models import Store  # noqa: F401
from .wallet.models import BonusTier, WalletAccount, WalletEntry, WalletPin, WalletTopup  # noqa: F401
