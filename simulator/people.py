"""Fake but plausible Vietnamese people: applicants and officials.

Names, 12-digit citizen id numbers (province code, century/sex digit, birth
year, six digits), mobile numbers and addresses. All drawn from the
simulation's random generator, so the same seed gives the same people.
"""

from __future__ import annotations

import random

FAMILY = (
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
)
FAMILY_WEIGHTS = (38, 11, 9.5, 7, 5, 5, 4.5, 3.9, 3.9, 2.1, 2, 1.4, 1.3, 1.3, 1, 0.5)
MIDDLE_M = ("Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh", "Công", "Xuân", "Ngọc")
MIDDLE_F = ("Thị", "Ngọc", "Thu", "Kim", "Thanh", "Minh", "Phương", "Bích", "Mỹ")
GIVEN_M = (
    "An",
    "Bình",
    "Dũng",
    "Giang",
    "Hải",
    "Hùng",
    "Khánh",
    "Long",
    "Minh",
    "Nam",
    "Phong",
    "Phúc",
    "Quang",
    "Quân",
    "Sơn",
    "Thành",
    "Trung",
    "Tuấn",
    "Tùng",
    "Việt",
    "Hiếu",
)
GIVEN_F = (
    "Chi",
    "Hà",
    "Hạnh",
    "Hoa",
    "Hương",
    "Lan",
    "Linh",
    "Mai",
    "Ngân",
    "Nhung",
    "Phương",
    "Tâm",
    "Thảo",
    "Trang",
    "Vy",
    "Yến",
    "Hằng",
    "Loan",
    "Dung",
    "Thủy",
    "Oanh",
)
STREETS = (
    "Lê Lợi",
    "Trần Hưng Đạo",
    "Nguyễn Huệ",
    "Hai Bà Trưng",
    "Quang Trung",
    "Lý Thường Kiệt",
    "Phan Chu Trinh",
    "Hùng Vương",
    "Nguyễn Trãi",
    "Điện Biên Phủ",
)
PROVINCE_ID_CODE = "060"  # first three digits of the citizen id for the simulated province


def person_name(rng: random.Random, female: bool) -> str:
    family = rng.choices(FAMILY, weights=FAMILY_WEIGHTS)[0]
    middle = rng.choice(MIDDLE_F if female else MIDDLE_M)
    given = rng.choice(GIVEN_F if female else GIVEN_M)
    return f"{family} {middle} {given}"


def official_name(rng: random.Random) -> str:
    return person_name(rng, rng.random() < 0.5)


def applicant(rng: random.Random, commune: str, district: str, province: str) -> dict[str, str]:
    """An applicant block: name, 12-digit id number, phone, address."""
    female = rng.random() < 0.5
    year = rng.randint(1950, 2005)
    century_sex = (0 if year < 2000 else 2) + (1 if female else 0)
    id_number = f"{PROVINCE_ID_CODE}{century_sex}{year % 100:02d}{rng.randrange(10**6):06d}"
    phone = f"0{rng.choice('3579')}{rng.randrange(10**8):08d}"
    address = (
        f"Số {rng.randint(1, 250)}, đường {rng.choice(STREETS)}, xã {commune}, "
        f"{district}, {province}"
    )
    return {
        "name": person_name(rng, female),
        "id_number": id_number,
        "phone": phone,
        "address": address,
    }
