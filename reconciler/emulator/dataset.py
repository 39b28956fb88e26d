"""A deterministic synthetic AED registry: what `getAedFullDown` would return, without the internet.

The real registry has about 81,000 records whose content is public but personal enough
(phone numbers, names) that it has no place in fixtures. `generate` builds a look-alike
from a seed: the same `(count, seed)` always gives the same records, in the same order.
Each record is a `dict[str, str]` with the API's field names; absent fields are absent
keys, never empty strings, and there is no `rnum` (the server numbers the rows of each
response).

What the records look like (the shapes observed in real responses, see
`aed-api-spec.md`):
- `serialSeq` is `NNN-YYMMDD-NNNNNN`, unique; its first group is the record's `zipcode1`,
  and the postcode lies in the sido's real range (서울 01xxx–08xxx, 경기 10xxx–18xxx, ...).
- `sido` is the long official name, `gugun` one of that sido's districts
  (`regions.GUGUN`); coordinates fall inside `regions.SIDO_BOUNDS` for the sido.
- `buildAddress` is a road-name address without the sido/gugun prefix, except for
  Sejong rows, which start with 세종특별자치시 (as in the full-download output).
- `manager` is masked (김**), `managerTel` too (010******** or 02-*******); `clerkTel`
  is a full hyphenated number.
- Mon–Fri times are always present; sat/sun/hol times are absent for about 40% of the
  records, and then all five `sun*Yon` flags are N.
- Realistic mess that a sensible validation must still accept: about 2% of records have
  leading/trailing spaces in `org` or `buildPlace`, about 1% a placeholder
  (없음/미정/필요/신규) in `model`, `mfg` or `buildPlace`, a few a `clerkTel` of `-`.

`mutate` turns a list into "the next day": some records changed, some removed, some added.
`dirty` plants records that a validation must reject (for its tests). Both are
deterministic in their seed and return new lists of new dicts.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from itertools import accumulate
from typing import TypeVar

from reconciler.drivers.aed.regions import GUGUN, SIDO_BOUNDS, SIDO_SHORT_TO_LONG, gugun_belongs, short_sido

FULL_COUNT = 81464
DEFAULT_SEED = 20251201
PLACEHOLDERS: tuple[str, ...] = ("없음", "미정", "필요", "신규")
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
WEEKEND: tuple[str, ...] = ("sat", "sun", "hol")
SUNDAY_FLAGS: tuple[str, ...] = ("sunFrtYon", "sunScdYon", "sunThiYon", "sunFurYon", "sunFifYon")
TIME_FIELDS: tuple[str, ...] = tuple(f"{d}{e}" for d in WEEKDAYS + WEEKEND for e in ("SttTme", "EndTme"))

Record = dict[str, str]
T = TypeVar("T")

# --- reference tables ------------------------------------------------------------------------

# Rough share of the registry per sido (population-like).
_SIDO_WEIGHTS: dict[str, float] = {
    "서울": 16.0, "부산": 6.5, "대구": 4.5, "인천": 5.5, "광주": 3.0, "대전": 3.0, "울산": 2.3,
    "세종": 0.8, "경기": 24.0, "강원": 4.5, "충북": 3.5, "충남": 4.5, "전북": 4.0, "전남": 5.0,
    "경북": 6.0, "경남": 6.5, "제주": 1.8,
}
# First two digits of the five-digit postcodes of each sido (inclusive range).
_POSTCODE_PREFIXES: dict[str, tuple[int, int]] = {
    "서울": (1, 8), "경기": (10, 18), "인천": (21, 23), "강원": (24, 26), "충북": (27, 29),
    "세종": (30, 30), "충남": (31, 33), "대전": (34, 35), "경북": (36, 40), "대구": (41, 43),
    "울산": (44, 45), "부산": (46, 49), "경남": (50, 53), "전북": (54, 56), "전남": (57, 60),
    "광주": (61, 62), "제주": (63, 63),
}
_AREA_CODES: dict[str, str] = {
    "서울": "02", "부산": "051", "대구": "053", "인천": "032", "광주": "062", "대전": "042",
    "울산": "052", "세종": "044", "경기": "031", "강원": "033", "충북": "043", "충남": "041",
    "전북": "063", "전남": "061", "경북": "054", "경남": "055", "제주": "064",
}
_SURNAMES = tuple("김이박최정강조윤장임한오서신권황안송류전홍고문양손배백허유남심노하곽성차주우구민진")
_DONGS = (
    "중앙", "신흥", "대흥", "월평", "상도", "신림", "봉천", "역삼", "대치", "논현", "잠실", "가락", "문정",
    "천호", "명일", "상계", "중계", "하계", "월계", "쌍문", "수유", "미아", "정릉", "길음", "성수", "금호",
    "옥수", "행당", "구의", "자양", "면목", "상봉", "신내", "휘경", "전농", "장안", "효자", "사직", "평창",
    "혜화", "창신", "연희", "신촌", "망원", "합정", "신월", "화곡", "등촌", "가양", "개봉", "독산", "대림",
    "흑석", "사당", "방배", "반포", "양재", "일원", "수서", "개포", "도곡", "방이", "오금", "거여", "둔촌",
    "고덕", "용당", "대연", "광안", "우동", "좌동", "연산", "범어", "만촌", "황금", "둔산", "탄방", "관평",
    "봉명", "수완", "첨단", "삼산", "달동", "율하", "송도", "구월", "주안", "부개", "정자", "매탄", "영통",
    "호계", "평촌", "산본", "금촌", "운정", "동탄", "봉담", "교하", "장기", "조치원", "보람", "도담", "연동",
    "노형", "이도", "동명", "서문", "남문", "북문", "향교", "교동", "내동", "송림", "도원", "석사", "후평",
)
_ROADS = (
    "중앙", "시민", "번영", "평화", "문화", "희망", "대학", "중부", "동부", "서부", "남부순환", "북부",
    "공원", "강변", "해안", "산업", "공단", "시장", "새마을", "행복", "한빛", "은행", "장미", "목련",
    "푸른솔", "하늘", "달빛", "새싹", "동산", "충효", "봉황", "청룡", "백마", "금강", "월드컵",
    "올림픽", "테헤란", "세종", "한누리", "도움", "노을", "가름", "다솜", "보듬", "미리내", "한림", "구암",
)
_MYEONS = (
    "남면", "북면", "서면", "동면", "신동면", "상북면", "하북면", "청하면", "운산면", "금산면", "대산면",
    "송산면", "월곡면", "옥산면", "용산면", "부남면", "내서면", "외서면", "삼산면", "도계면",
)
_APARTMENT_BRANDS = (
    "래미안", "자이", "힐스테이트", "e편한세상", "푸르지오", "롯데캐슬", "아이파크", "더샵", "센트레빌",
    "꿈에그린", "우미린", "호반베르디움", "현대", "삼성", "우성", "대림", "벽산", "쌍용", "한양",
    "금호어울림", "동아", "주공", "한신", "극동",
)
# (mfg, model, weight): one maker appears with and without "(주)", as in real data.
_DEVICES: tuple[tuple[str, str, int], ...] = (
    ("씨유메디칼", "CU-SP1", 14), ("(주)씨유메디칼", "CU-SP1", 8), ("씨유메디칼", "CU-SP2", 6),
    ("씨유메디칼시스템", "i-PAD NF1200", 5), ("씨유메디칼", "NF1200", 8),
    ("(주)씨유메디칼", "CU-SP1 AUTO", 3),
    ("나눔테크", "NT-381.C", 8), ("(주)나눔테크", "NT-381.C", 5), ("나눔테크", "NT-180", 3),
    ("라디안", "HR-501", 5), ("(주)라디안", "HR-503", 2), ("Philips", "HeartStart HS1", 5),
    ("필립스", "HeartStart FRx", 3), ("Philips", "HeartStart OnSite M5066A", 2),
    ("메디아나", "HeartOn A15", 4),
    ("ZOLL", "AED Plus", 3), ("Zoll Medical", "AED 3", 1), ("Physio-Control", "LIFEPAK CR Plus", 2),
    ("Physio-Control", "LIFEPAK 1000", 1), ("Nihon Kohden", "AED-2150K", 1),
    ("HeartSine", "samaritan PAD 360P", 1), ("Cardiac Science", "Powerheart G5", 1),
    ("Defibtech", "Lifeline AED", 1),
)


def _hours(week: tuple[str, str], weekend: tuple[str, str] | None = None, *, sunday: str = "YYYYY",
           sat: tuple[str, str] | None = None) -> Record:
    """One opening-hours template; no weekend means sat/sun/hol absent and every Sunday N."""
    hours = {f"{d}{e}": t for d in WEEKDAYS for e, t in zip(("SttTme", "EndTme"), week, strict=True)}
    if weekend is None:
        sunday = "NNNNN"
    else:
        for d in WEEKEND:
            times = sat if d == "sat" and sat else weekend
            hours.update({f"{d}SttTme": times[0], f"{d}EndTme": times[1]})
    hours.update(dict(zip(SUNDAY_FLAGS, sunday, strict=True)))
    return hours


_OFFICE = _hours(("0900", "1800"))
_OFFICE_1730 = _hours(("0900", "1730"))
_SCHOOL = _hours(("0830", "1630"))
_ROUND = _hours(("0000", "2400"), ("0000", "2400"))
_SHOP = _hours(("1000", "2200"), ("1000", "2200"))
_CLINIC = _hours(("0900", "1800"), ("0900", "1300"), sunday="YNYNY")
_GYM = _hours(("0600", "2200"), ("0900", "1800"), sat=("0800", "1800"))
_STATION = _hours(("0530", "2400"), ("0530", "2400"))
_CHURCH = _hours(("0900", "1800"), ("0700", "2100"), sat=("0900", "1800"))
_ALL_WEEK = _hours(("0900", "1800"), ("0900", "1800"))


class _Kind:
    """A kind of installing institution: how it is named, where the AED hangs, its hours."""

    __slots__ = ("hours", "is_apartment", "names", "places")

    def __init__(self, names: Sequence[str], places: Sequence[str], hours: Iterable[tuple[Record, int]],
                 *, is_apartment: bool = False) -> None:
        self.names = tuple(names)
        self.places = tuple(places)
        self.hours = tuple(h for h, weight in hours for _ in range(weight))
        self.is_apartment = is_apartment


# (kind, weight); sat/sun/hol times end up absent for about 40% of the records.
_KINDS: tuple[tuple[_Kind, float], ...] = (
    (_Kind(
        ("{dong}{brand} 관리사무소", "{brand}{n}단지 관리사무소", "{dong}주공{n}단지아파트 관리사무소",
         "{dong}{brand}아파트"),
        ("관리사무소 앞", "관리사무소 내", "경비실", "{n}01동 1층 현관", "커뮤니티센터 입구",
         "지하주차장 엘리베이터 앞", "관리동 1층"),
        ((_ROUND, 8), (_OFFICE, 1), (_ALL_WEEK, 1)), is_apartment=True), 30),
    (_Kind(
        ("{dong}동 행정복지센터", "{dong}{n}동 주민센터", "{dong}동 주민센터"),
        ("1층 민원실", "민원실 입구", "1층 로비", "2층 대회의실 앞"),
        ((_OFFICE, 9), (_ALL_WEEK, 1))), 14),
    (_Kind(
        ("{dong}초등학교", "{dong}중학교", "{dong}고등학교", "{town}여자중학교", "{town}공업고등학교",
         "{dong}유치원"),
        ("보건실", "행정실 앞", "1층 중앙현관", "체육관 입구", "교무실 옆"),
        ((_SCHOOL, 9), (_ROUND, 1))), 11),
    (_Kind(
        ("{gugun}보건소", "{dong}보건지소", "{dong}보건진료소"),
        ("1층 로비", "진료실", "접수대 옆", "1층 민원실"),
        ((_OFFICE_1730, 4), (_OFFICE, 4), (_CLINIC, 2))), 4),
    (_Kind(
        ("{town}국민체육센터", "{dong}체육관", "{town}종합운동장", "{dong}체육공원 관리사무소",
         "{town}시민수영장"),
        ("1층 안내데스크", "헬스장 입구", "수영장 입구", "관리사무실", "매표소 옆"),
        ((_GYM, 8), (_OFFICE, 2))), 6),
    (_Kind(
        ("{dong}지구대", "{dong}파출소", "{town}소방서", "{dong}119안전센터", "{town}경찰서"),
        ("1층 사무실", "민원실", "차고", "상황실 입구"),
        ((_ROUND, 1),)), 4),
    (_Kind(
        ("{dong}경로당", "{town}노인복지관", "{town}종합사회복지관", "{dong}어린이집",
         "{town}장애인복지관"),
        ("거실", "1층 현관", "프로그램실 앞", "사무실", "1층 로비"),
        ((_OFFICE, 5), (_ALL_WEEK, 5))), 6),
    (_Kind(
        ("{dong}역", "{town}시외버스터미널", "{road}휴게소(상행)", "{road}휴게소(하행)",
         "{town}여객선터미널"),
        ("대합실", "매표소 옆", "고객안내센터 옆", "개찰구 앞", "화장실 입구"),
        ((_STATION, 7), (_ROUND, 3))), 5),
    (_Kind(
        ("이마트 {dong}점", "홈플러스 {dong}점", "롯데마트 {dong}점", "{dong}빌딩", "{dong}전통시장 상인회",
         "{dong}타워 관리단", "{town}농협 {dong}지점", "{dong}새마을금고"),
        ("고객센터", "1층 고객만족센터", "관리사무실", "계산대 옆", "1층 엘리베이터 앞", "방재실"),
        ((_SHOP, 6), (_OFFICE, 2), (_ROUND, 2))), 8),
    (_Kind(
        ("{dong}의원", "{town}병원", "{dong}내과의원", "{dong}치과의원", "{town}요양병원"),
        ("접수대", "진료실", "응급실", "1층 원무과", "간호사실"),
        ((_CLINIC, 6), (_OFFICE, 2), (_ROUND, 2))), 3),
    (_Kind(
        ("{dong}교회", "{dong}성당", "{dong}제일교회"),
        ("1층 로비", "사무실", "본당 입구", "교육관 1층"),
        ((_CHURCH, 8), (_OFFICE, 2))), 3),
    (_Kind(
        ("{gugun}청", "{town}세무서", "{town}우체국", "{dong}우체국", "{town}시립도서관", "{gugun}의회"),
        ("1층 종합민원실", "본관 1층 로비", "당직실", "민원실 입구", "1층 안내데스크"),
        ((_OFFICE, 7), (_ALL_WEEK, 3))), 3),
)

_SEJONG_PREFIX = SIDO_SHORT_TO_LONG["세종"] + " "


def _serial_dates() -> tuple[str, ...]:
    """Every YYMMDD from 2008-01-01 to 2025-11-30: registration dates in serials."""
    first, days = date(2008, 1, 1), (date(2025, 11, 30) - date(2008, 1, 1)).days + 1
    return tuple((first + timedelta(days=i)).strftime("%y%m%d") for i in range(days))


def _postcode_groups(short: str) -> dict[str, tuple[str, ...]]:
    """The sido's three-digit postcode prefixes, split into a contiguous run per gugun."""
    low, high = _POSTCODE_PREFIXES[short]
    prefixes = [f"{p:03d}" for p in range(low * 10, high * 10 + 10)]
    names = GUGUN[short]
    size = len(prefixes) / len(names)
    return {g: tuple(prefixes[int(i * size):max(int((i + 1) * size), int(i * size) + 1)])
            for i, g in enumerate(names)}


class _Factory:
    """Draws records from one `random.Random`; keeps the per-postcode serial counters."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        rand = rng.random
        self.rand = rand
        self.sidos = tuple(_SIDO_WEIGHTS)
        self.sido_cum = tuple(accumulate(_SIDO_WEIGHTS.values()))
        self.kinds = tuple(k for k, _ in _KINDS)
        self.kind_cum = tuple(accumulate(w for _, w in _KINDS))
        self.devices = tuple((m, d) for m, d, _ in _DEVICES)
        self.device_cum = tuple(accumulate(w for *_, w in _DEVICES))
        self.postcodes = {s: _postcode_groups(s) for s in self.sidos}
        self.dates = _serial_dates()
        self.counters: dict[str, int] = {}

    def pick(self, seq: Sequence[T]) -> T:
        return seq[int(self.rand() * len(seq))]

    def weighted(self, cum: Sequence[float]) -> int:
        return bisect(cum, self.rand() * cum[-1])

    def serial(self, zip1: str, taken: set[str] | None) -> str:
        rand = self.rand
        while True:
            number = self.counters.get(zip1)
            if number is None:
                number = 1 + int(rand() * 2000)
            self.counters[zip1] = number + 1 + int(rand() * 8)
            serial = f"{zip1}-{self.pick(self.dates)}-{number:06d}"
            if taken is None or serial not in taken:
                return serial

    def phone(self, short: str) -> str:
        rand = self.rand
        r = rand()
        if r < 0.005:
            return "-"
        if r < 0.12:
            return f"010-{1000 + int(rand() * 9000)}-{1000 + int(rand() * 9000)}"
        area = _AREA_CODES[short]
        middle = 200 + int(rand() * (9800 if area == "02" else 800))
        return f"{area}-{middle}-{1000 + int(rand() * 9000)}"

    def coordinate(self, low: float, high: float) -> str:
        rand = self.rand
        value = low + 0.001 + rand() * (high - low - 0.002)
        style = rand()
        if style < 0.6:  # float artefacts, 14-15 decimals, as in full-download output
            return repr(value)
        return f"{value:.7f}" if style < 0.85 else f"{value:.10f}"

    def record(self, *, taken: set[str] | None = None, short: str | None = None,
               gugun: str | None = None) -> Record:
        rand, pick = self.rand, self.pick
        if short is None:
            short = self.sidos[self.weighted(self.sido_cum)]
        if gugun is None or gugun not in self.postcodes[short]:
            gugun = pick(GUGUN[short])
        zip1 = pick(self.postcodes[short][gugun])
        kind = self.kinds[self.weighted(self.kind_cum)]
        dong = pick(_DONGS)
        brand = pick(_APARTMENT_BRANDS)
        road = pick(_ROADS)
        town = gugun[:-1] if len(gugun) > 2 else gugun
        n = str(1 + int(rand() * 12))
        names = {"dong": dong, "brand": brand, "road": road, "town": town, "gugun": gugun, "n": n}
        org = pick(kind.names).format_map(names)
        place = pick(kind.places).format_map(names)
        mfg, model = self.devices[self.weighted(self.device_cum)]
        lat_min, lat_max, lon_min, lon_max = SIDO_BOUNDS[short]
        area = _AREA_CODES[short]
        record: Record = {
            "buildAddress": self.address(short, gugun, dong, road, brand if kind.is_apartment else None),
            "buildPlace": place,
            "clerkTel": self.phone(short),
            "gugun": gugun,
            "manager": pick(_SURNAMES) + "**",
            "managerTel": "010********" if rand() < 0.65 else f"{area}-" + "*" * (7 if rand() < 0.7 else 6),
            "mfg": mfg,
            "model": model,
            "org": org,
            "serialSeq": self.serial(zip1, taken),
            "sido": SIDO_SHORT_TO_LONG[short],
            "wgs84Lat": self.coordinate(lat_min, lat_max),
            "wgs84Lon": self.coordinate(lon_min, lon_max),
            "zipcode1": zip1,
            "zipcode2": f"{int(rand() * 100):02d}",
        }
        record.update(pick(kind.hours))
        mess = rand()
        if mess < 0.02:  # stray spaces, as typed into the registry
            field = "org" if mess < 0.01 else "buildPlace"
            leading = mess < 0.005 or 0.01 <= mess < 0.015
            record[field] = " " + record[field] if leading else record[field] + " "
        elif mess < 0.03:  # placeholders the mapping turns into NULL
            field = ("model", "mfg", "buildPlace")[int(rand() * 3)]
            record[field] = pick(PLACEHOLDERS)
        return record

    def address(self, short: str, gugun: str, dong: str, road: str, apartment: str | None) -> str:
        rand = self.rand
        shape = rand()
        if shape < 0.45:
            street = f"{road}로"
        elif shape < 0.7:
            street = f"{road}로{1 + int(rand() * 60)}{'번길' if rand() < 0.4 else '길'}"
        elif shape < 0.85:
            street = f"{road}대로"
        else:
            street = f"{road}길"
        number = str(1 + int(rand() * 350))
        if rand() < 0.15:
            number += f"-{1 + int(rand() * 30)}"
        text = f"{street} {number}"
        if gugun.endswith("군") and rand() < 0.8:
            town = f"{gugun[:-1]}읍" if rand() < 0.4 else self.pick(_MYEONS)
            text = f"{town} {text}"
        detail = rand()
        if apartment is not None and detail < 0.3:
            text += f" ({dong}동, {dong}{apartment})"
        elif detail < 0.25:
            text += f" ({dong}동)"
        elif detail < 0.35:
            text += f", {1 + int(rand() * 5)}층"
        return _SEJONG_PREFIX + text if short == "세종" else text


def generate(count: int = FULL_COUNT, seed: int = DEFAULT_SEED) -> list[Record]:
    """`count` synthetic AED records, the same for the same `(count, seed)`."""
    factory = _Factory(random.Random(seed))
    record = factory.record
    return [record() for _ in range(count)]


# --- a day of changes --------------------------------------------------------------------------

_CHANGE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("org",), ("buildPlace",), ("clerkTel",), ("manager", "managerTel"), ("mfg", "model"),
    ("buildAddress",), ("zipcode2",), ("wgs84Lat", "wgs84Lon"), TIME_FIELDS + SUNDAY_FLAGS,
)


def _changed(record: Record, factory: _Factory) -> Record:
    """A copy of `record` with one to three groups of content fields replaced; never equal."""
    rng = factory.rng
    short = short_sido(record.get("sido", "")) or None
    fresh = factory.record(short=short, gugun=record.get("gugun"))
    new = dict(record)
    for group in rng.sample(_CHANGE_GROUPS, 1 + int(rng.random() * 3)):
        if group[0] == "wgs84Lat":
            _nudge(new, fresh, short, rng)
            continue
        for name in group:  # hours: drop the old set first, the new one may lack the weekend
            new.pop(name, None)
        new.update({name: fresh[name] for name in group if name in fresh})
    if new == record:
        new["buildPlace"] = record.get("buildPlace", "").strip() + " 옆"
    return new


def _nudge(new: Record, fresh: Record, short: str | None, rng: random.Random) -> None:
    """Move the AED a few metres to a hundred metres, staying inside the sido's box."""
    try:
        lat, lon = float(new["wgs84Lat"]), float(new["wgs84Lon"])
    except (KeyError, ValueError):
        new["wgs84Lat"], new["wgs84Lon"] = fresh["wgs84Lat"], fresh["wgs84Lon"]
        return
    lat += (rng.random() - 0.5) * 0.002
    lon += (rng.random() - 0.5) * 0.002
    if short is not None:
        lat_min, lat_max, lon_min, lon_max = SIDO_BOUNDS[short]
        lat, lon = min(max(lat, lat_min), lat_max), min(max(lon, lon_min), lon_max)
    new["wgs84Lat"], new["wgs84Lon"] = f"{lat:.10f}", f"{lon:.10f}"


def mutate(items: Sequence[Record], fraction: float, seed: int) -> list[Record]:
    """The next day's registry: `fraction` of the records changed, `fraction`/4 removed, as many added.

    Counts are `round(len(items) * fraction)` changed and `round(len(items) * fraction / 4)`
    removed and added; changed and removed records are distinct. Survivors keep their
    order; added records (new, unique serials) come last.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"expected a fraction between 0 and 1, got {fraction}")
    rng = random.Random(seed)
    total = len(items)
    changed = round(total * fraction)
    removed = min(round(total * fraction / 4), total - changed)
    picked = rng.sample(range(total), changed + removed)
    change, remove = set(picked[:changed]), set(picked[changed:])
    factory = _Factory(rng)
    result = [
        _changed(record, factory) if i in change else dict(record)
        for i, record in enumerate(items)
        if i not in remove
    ]
    taken = {record["serialSeq"] for record in items if "serialSeq" in record}
    for _ in range(round(total * fraction / 4)):
        added = factory.record(taken=taken)
        taken.add(added["serialSeq"])
        result.append(added)
    return result


# --- records a validation must reject ----------------------------------------------------------

DIRTY_KINDS: tuple[str, ...] = (
    "zero-coordinates", "outside-korea", "foreign-gugun", "missing-serial", "long-org", "bad-latitude",
)
ALL_DIRTY_KINDS: tuple[str, ...] = (*DIRTY_KINDS, "duplicate-serial")


def _spoil(record: Record, kind: str, rng: random.Random, neighbour: Record) -> None:
    spoilers: dict[str, Callable[[], object]] = {
        "zero-coordinates": lambda: record.update(wgs84Lat="0", wgs84Lon="0"),
        "outside-korea": lambda: record.update(  # swapped axes, or Tokyo
            {"wgs84Lat": record.get("wgs84Lon", "127.0"), "wgs84Lon": record.get("wgs84Lat", "37.5")}
            if rng.random() < 0.5 else {"wgs84Lat": "35.6812362", "wgs84Lon": "139.7671248"}
        ),
        "foreign-gugun": lambda: record.update(gugun=_foreign_gugun(record.get("sido", ""), rng)),
        "missing-serial": lambda: record.pop("serialSeq", None),
        "long-org": lambda: record.update(org=_long_name(record.get("org", "").strip() or "설치기관")),
        "bad-latitude": lambda: record.update(wgs84Lat="미상"),
        "duplicate-serial": lambda: record.update(serialSeq=neighbour.get("serialSeq", "")),
    }
    spoilers[kind]()


def _foreign_gugun(sido: str, rng: random.Random) -> str:
    others = sorted(GUGUN)
    while True:
        candidates = [g for g in GUGUN[rng.choice(others)] if not gugun_belongs(sido, g)]
        if candidates:
            return rng.choice(candidates)


def _long_name(org: str) -> str:
    name = org
    while len(name) <= 100:
        name += f" {org} 별관"
    return name


def dirty(items: Sequence[Record], fraction: float, seed: int,
          *, kinds: Sequence[str] = DIRTY_KINDS) -> list[Record]:
    """A copy of `items` where `round(len(items) * fraction)` records carry one problem each.

    The spoiled records are chosen by `seed`; in their list order they take the `kinds` in
    turn (the first the first kind, ...), so the count per kind is known in advance.
    `duplicate-serial` (in `ALL_DIRTY_KINDS`, not in the default) copies the next record's
    serial, which fails a whole run rather than one row.
    """
    unknown = sorted(set(kinds) - set(ALL_DIRTY_KINDS))
    if unknown or not kinds:
        raise ValueError(f"expected kinds among {', '.join(ALL_DIRTY_KINDS)}, got {list(kinds)}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"expected a fraction between 0 and 1, got {fraction}")
    rng = random.Random(seed)
    result = [dict(record) for record in items]
    total = len(result)
    for turn, index in enumerate(sorted(rng.sample(range(total), round(total * fraction)))):
        _spoil(result[index], kinds[turn % len(kinds)], rng, items[(index + 1) % total])
    return result
