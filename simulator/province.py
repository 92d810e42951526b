"""A fictional province: agencies at province, district and commune level, their
one-stop desks, their officials, and which procedures each level handles.

Agency codes follow TT 10/2016/TT-BTTTT as used in dossier codes
(``V1V2V3.Z1Z2.Y1Y2.MX1X2``): level 1 is the province (``H60``), level 2 a
department or district, level 3 a district office or commune, level 4 a
commune's desk. The same seed gives the same province.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from dataclasses import dataclass, field
from itertools import accumulate

from ledger.domain.catalog import Catalog, ProcedureVersion
from simulator.behaviour import PACES, TRAITS, Params
from simulator.people import official_name

PROVINCE = "H60"
PROVINCE_NAME = "Tỉnh Sông Lam"

PROVINCE_DEPARTMENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Sở Tư pháp",
        (
            "Hộ tịch",
            "Chứng thực",
            "Công chứng",
            "Luật sư",
            "Thừa phát lại",
            "Giám định",
            "Đấu giá",
            "Trợ giúp pháp lý",
            "Hòa giải",
            "Trọng tài",
            "Nuôi con nuôi",
            "Quốc tịch",
            "Lý lịch tư pháp",
            "Tư pháp",
        ),
    ),
    (
        "Sở Tài chính",
        (
            "doanh nghiệp",
            "Đầu tư",
            "hợp tác xã",
            "hộ kinh doanh",
            "Tài chính",
            "Giá",
            "Ngân sách",
            "ngân sách",
        ),
    ),
    (
        "Sở Xây dựng",
        (
            "xây dựng",
            "Nhà ở",
            "Quy hoạch",
            "Hạ tầng",
            "Đường bộ",
            "Đường sắt",
            "giao thông",
            "bất động sản",
            "Đăng kiểm",
            "đường thủy",
            "Vận tải",
        ),
    ),
    (
        "Sở Nông nghiệp và Môi trường",
        (
            "Đất đai",
            "Nông nghiệp",
            "Lâm nghiệp",
            "Kiểm lâm",
            "Thủy sản",
            "Thú y",
            "Chăn nuôi",
            "Trồng trọt",
            "Thủy lợi",
            "Tài nguyên",
            "Địa chất",
            "khoáng sản",
            "Môi trường",
            "Biển",
            "Đê điều",
            "Bảo tồn",
            "nông lâm sản",
            "Khí tượng",
            "Đo đạc",
        ),
    ),
    (
        "Sở Y tế",
        (
            "Y tế",
            "Dược",
            "khám bệnh",
            "Khám bệnh",
            "thực phẩm",
            "Dân số",
            "Trang thiết bị y tế",
            "Mỹ phẩm",
        ),
    ),
    (
        "Sở Nội vụ",
        (
            "Lao động",
            "Việc làm",
            "BHXH",
            "BHYT",
            "Người có công",
            "Giảm nghèo",
            "Bảo trợ",
            "Chính sách",
            "Thi đua",
            "cai nghi",
            "Tiền lương",
            "Công chức",
            "An toàn, vệ sinh lao động",
            "Trẻ em",
            "Bình đẳng giới",
        ),
    ),
    ("Sở Giáo dục và Đào tạo", ("Giáo dục", "Đào tạo", "đào tạo", "Văn bằng", "Thi")),
    (
        "Sở Công Thương",
        (
            "Công Thương",
            "Thương mại",
            "Điện",
            "Hóa chất",
            "Xăng dầu",
            "cạnh tranh",
            "Năng lượng",
            "Xuất nhập khẩu",
            "Công nghiệp",
        ),
    ),
    (
        "Sở Văn hóa, Thể thao và Du lịch",
        (
            "Văn hóa",
            "Thể thao",
            "Du lịch",
            "Di sản",
            "Quảng cáo",
            "Gia đình",
            "Báo chí",
            "Xuất bản",
            "Điện ảnh",
            "Nghệ thuật",
            "Thư viện",
        ),
    ),
    (
        "Sở Khoa học và Công nghệ",
        (
            "Khoa học",
            "Công nghệ",
            "Tiêu chuẩn",
            "Đo lường",
            "Chất lượng",
            "Bưu chính",
            "Viễn thông",
            "Sở hữu",
            "Năng lượng nguyên tử",
            "An toàn bức xạ",
            "Tần số",
        ),
    ),
    (
        "Công an tỉnh",
        (
            "cư trú",
            "căn cước",
            "vũ khí",
            "Phòng cháy",
            "xuất nhập cảnh",
            "phương tiện giao thông",
            "con dấu",
            "Quản lý ngành nghề",
        ),
    ),
    ("Sở Dân tộc và Tôn giáo", ("Dân tộc", "Tôn giáo", "Tín ngưỡng")),
)

DISTRICT_DEPARTMENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Phòng Tư pháp", PROVINCE_DEPARTMENTS[0][1]),
    ("Phòng Tài nguyên và Môi trường", PROVINCE_DEPARTMENTS[3][1]),
    (
        "Phòng Kinh tế - Hạ tầng",
        PROVINCE_DEPARTMENTS[1][1] + PROVINCE_DEPARTMENTS[2][1] + PROVINCE_DEPARTMENTS[7][1],
    ),
    (
        "Phòng Lao động - Thương binh và Xã hội",
        PROVINCE_DEPARTMENTS[5][1] + PROVINCE_DEPARTMENTS[6][1] + PROVINCE_DEPARTMENTS[4][1],
    ),
)

DISTRICTS = ("Huyện Bắc Sơn", "Huyện Lam Hà", "Huyện Đông Triều", "Thị xã Hòa Phong")
COMMUNE_NAMES = (
    "An Bình",
    "Tân Lập",
    "Hòa Lạc",
    "Phú Mỹ",
    "Thạnh Lợi",
    "Vĩnh Hưng",
    "Đồng Tâm",
    "Quảng Phú",
    "Thủy An",
    "Tân Phong",
    "Hưng Đạo",
    "Kim Sơn",
    "Minh Khai",
    "Nghĩa Hưng",
    "Phúc Thọ",
    "Xuân Lộc",
    "Yên Bình",
    "Lộc Hà",
    "Cẩm Thủy",
    "Tiên Phước",
    "Hòa Bình",
    "Long Hưng",
    "Thuận Thành",
    "Bình An",
    "Phong Phú",
    "Đức Hòa",
    "Trung Nghĩa",
    "Hải Thanh",
    "Nam Sơn",
    "Tây Hồ",
    "Thái Học",
    "Đại Đồng",
)
COMMUNES_PER_DISTRICT = 8

# Fields the province's one-stop desks do not handle (central branches: customs, tax,
# banking, treasury, courts, aviation).
EXCLUDED_FIELDS = (
    "Hải quan",
    "Thuế",
    "ngân hàng",
    "ngoại hối",
    "Chứng khoán",
    "Kho bạc",
    "Tòa án",
    "Hàng không",
    "Quản lý thuế",
    "Bảo hiểm",
)
# Relative demand by field (the rest weigh 1): civil status and certification dominate.
FIELD_WEIGHTS = {
    "Hộ tịch": 40.0,
    "Chứng thực": 40.0,
    "Đất đai": 15.0,
    "Đăng ký, quản lý cư trú": 8.0,
    "Cấp, quản lý căn cước": 5.0,
    "Người có công": 4.0,
    "Thực hiện chính sách BHXH": 3.0,
    "Thành lập và hoạt động doanh nghiệp (hộ kinh doanh)": 6.0,
    "Hoạt động xây dựng": 6.0,
    "Giảm nghèo": 2.0,
    "Thành lập và hoạt động của doanh nghiệp": 5.0,
    "Nhà ở và công sở": 2.0,
    "Lý lịch tư pháp": 4.0,
    "Giáo dục và Đào tạo": 3.0,
    "Bảo trợ xã hội": 3.0,
}


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    level: str  # province | district | commune
    kind: str  # desk | department | committee


@dataclass
class Official:
    id: str
    name: str
    role: str  # receiver | appraiser | approver | agency_head
    agency: str
    pace: str
    trait: str | None = None


@dataclass
class Office:
    """A handling agency with the desk that receives for it and its officials."""

    agency: Agency
    desk: Agency
    receivers: list[Official]
    appraisers: list[Official]
    approvers: list[Official]
    head: Official
    partner: Office | None = None
    """The body consulted (liên thông) or bounced to; set after all offices exist."""


@dataclass
class Menu:
    """Procedures one level handles, with cumulative demand weights for drawing."""

    codes: list[str]
    cumulative: list[float]
    office_of: dict[str, list[Office]] = field(default_factory=dict)

    def draw(self, rng: random.Random) -> str:
        x = rng.random() * self.cumulative[-1]
        return self.codes[bisect.bisect_right(self.cumulative, x)]


def _h(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _department(field_name: str, table: tuple[tuple[str, tuple[str, ...]], ...]) -> int:
    for i, (_, keys) in enumerate(table):
        if any(k in field_name for k in keys):
            return i
    return _h(field_name) % len(table)


def _excluded(v: ProcedureVersion) -> bool:
    return any(k in v.field for k in EXCLUDED_FIELDS)


def _levels(v: ProcedureVersion) -> tuple[str, ...]:
    out = []
    if "commune" in v.level:
        out.append("commune")
    if "commune" in v.level and "province" in v.level:
        out.append("district")
    if "province" in v.level:
        out.append("province")
    return tuple(out)


class Province:
    """Agencies, desks, offices and officials of the simulated province."""

    def __init__(self, rng: random.Random, params: Params, catalog: Catalog) -> None:
        self.agencies: list[Agency] = []
        self.offices: dict[str, list[Office]] = {"province": [], "district": [], "commune": []}
        self.officials: list[Official] = []
        self._counter: dict[str, int] = {}
        self._build(rng)
        self._pair_partners()
        self._assign_traits(rng, params)
        self.menus = self._menus(catalog)

    # --- structure -----------------------------------------------------------

    def _agency(self, code: str, name: str, level: str, kind: str) -> Agency:
        a = Agency(code, name, level, kind)
        self.agencies.append(a)
        return a

    def _official(self, rng: random.Random, role: str, agency: Agency) -> Official:
        n = self._counter.get(agency.code, 0) + 1
        self._counter[agency.code] = n
        pace = rng.choices(PACES, weights=(0.3, 0.6, 0.1))[0]
        o = Official(f"{agency.code}/CB{n:02d}", official_name(rng), role, agency.code, pace)
        self.officials.append(o)
        return o

    def _office(self, rng, agency, desk, receivers, n_appr, n_approvers) -> Office:
        appraisers = [self._official(rng, "appraiser", agency) for _ in range(n_appr)]
        approvers = [self._official(rng, "approver", agency) for _ in range(n_approvers)]
        head = self._official(rng, "agency_head", agency)
        return Office(agency, desk, receivers, appraisers, approvers, head)

    def _build(self, rng: random.Random) -> None:
        p = PROVINCE
        self._agency(f"000.00.00.{p}", f"Ủy ban nhân dân {PROVINCE_NAME}", "province", "committee")
        desk = self._agency(
            f"000.00.01.{p}", "Trung tâm Phục vụ hành chính công tỉnh", "province", "desk"
        )
        receivers = [self._official(rng, "receiver", desk) for _ in range(14)]
        for i, (name, _) in enumerate(PROVINCE_DEPARTMENTS):
            dept = self._agency(f"000.00.{i + 2:02d}.{p}", name, "province", "department")
            self.offices["province"].append(self._office(rng, dept, desk, receivers, 4, 2))
        for d, dname in enumerate(DISTRICTS):
            y = f"{21 + d:02d}"
            self._agency(f"000.00.{y}.{p}", f"Ủy ban nhân dân {dname}", "district", "committee")
            ddesk = self._agency(f"000.01.{y}.{p}", f"Bộ phận Một cửa {dname}", "district", "desk")
            dreceivers = [self._official(rng, "receiver", ddesk) for _ in range(4)]
            for j, (name, _) in enumerate(DISTRICT_DEPARTMENTS):
                dept = self._agency(
                    f"000.{j + 2:02d}.{y}.{p}", f"{name} {dname}", "district", "department"
                )
                self.offices["district"].append(self._office(rng, dept, ddesk, dreceivers, 3, 1))
            for c in range(COMMUNES_PER_DISTRICT):
                z = f"{11 + c:02d}"
                cname = COMMUNE_NAMES[d * COMMUNES_PER_DISTRICT + c]
                committee = self._agency(
                    f"000.{z}.{y}.{p}", f"Ủy ban nhân dân xã {cname}", "commune", "committee"
                )
                cdesk = self._agency(
                    f"001.{z}.{y}.{p}", f"Bộ phận Một cửa xã {cname}", "commune", "desk"
                )
                creceivers = [self._official(rng, "receiver", cdesk) for _ in range(2)]
                self.offices["commune"].append(
                    self._office(rng, committee, cdesk, creceivers, 3, 2)
                )

    def _pair_partners(self) -> None:
        prov = self.offices["province"]
        for i, office in enumerate(prov):
            office.partner = prov[(i + 3) % len(prov)]
        dist = self.offices["district"]
        per = len(DISTRICT_DEPARTMENTS)
        for i, office in enumerate(dist):
            base = (i // per) * per
            office.partner = dist[base + (i + 1) % per]
        for i, office in enumerate(self.offices["commune"]):
            office.partner = dist[(i // COMMUNES_PER_DISTRICT) * per]  # district justice office

    def _assign_traits(self, rng: random.Random, params: Params) -> None:
        taken: set[str] = set()
        for trait, (roles, _) in TRAITS.items():
            pool = [o for o in self.officials if o.role in roles and o.id not in taken]
            if trait == "double_hat":  # one person receiving and approving: small communes
                pool = [o for o in pool if o.agency.startswith("001.")]
            for o in rng.sample(pool, min(params.trait_officials.get(trait, 0), len(pool))):
                o.trait = trait
                taken.add(o.id)

    def _menus(self, catalog: Catalog) -> dict[str, Menu]:
        menus: dict[str, Menu] = {}
        for level in ("commune", "district", "province"):
            codes, weights = [], []
            offices = self.offices[level]
            table = DISTRICT_DEPARTMENTS if level == "district" else PROVINCE_DEPARTMENTS
            office_of: dict[str, list[Office]] = {}
            for code in catalog.codes:
                v = catalog.latest(code)
                if _excluded(v) or level not in _levels(v):
                    continue
                rank = 1 + _h(f"rank:{level}:{code}") % 200
                codes.append(code)
                weights.append(FIELD_WEIGHTS.get(v.field, 1.0) / rank**0.8)
                if level == "commune":
                    office_of[code] = offices
                else:
                    dept = _department(v.field, table)
                    office_of[code] = [o for k, o in enumerate(offices) if k % len(table) == dept]
            menus[level] = Menu(codes, list(accumulate(weights)), office_of)
        return menus
