"""Korea's administrative regions as the AED data names them: 17 sido and their si/gun/gu.

The AED open API sends the sido under its long official name (서울특별시), while the
`aed_data` table stores the short form (서울); sources still carry the names that changed
recently (강원도 became 강원특별자치도 in 2023, 전라북도 became 전북특별자치도 in 2024). This module
is the one place that knows both forms and which districts belong to which sido, for the
`sidoShortName` / `sidoLongName` transforms, the sido/gugun consistency check and the
emulator's synthetic data.

The model:
- `SIDO_SHORT_TO_LONG` maps each short name to its *current* official name;
  `SIDO_LONG_TO_SHORT` also accepts the former official names.
- `GUGUN[short]` lists the sido's 기초자치단체 (autonomous si, gun and gu) as of 2025, one
  name each, without the non-autonomous gu of the large cities: 경기 has 31 entries,
  `수원시` among them, not `수원시 장안구`. Sejong has no districts; its one entry is `세종시`.
- `gugun_belongs` is lenient where sources differ: it also accepts a city followed by one
  of its non-autonomous gu (`수원시 장안구`), names that moved or were renamed recently
  (군위군 under 경북, 남구 under 인천), and the sido's own name as Sejong's gugun.
- `SIDO_BOUNDS` are rough boxes around each sido, islands included (인천 reaches Baengnyeong,
  경북 reaches Ulleung and Dokdo); good for generating plausible coordinates, too coarse to
  tell neighbouring sido apart.

Pure data and small functions: no imports beyond the standard library's typing.
"""

from __future__ import annotations

SIDO_SHORT_TO_LONG: dict[str, str] = {
    "서울": "서울특별시",
    "부산": "부산광역시",
    "대구": "대구광역시",
    "인천": "인천광역시",
    "광주": "광주광역시",
    "대전": "대전광역시",
    "울산": "울산광역시",
    "세종": "세종특별자치시",
    "경기": "경기도",
    "강원": "강원특별자치도",
    "충북": "충청북도",
    "충남": "충청남도",
    "전북": "전북특별자치도",
    "전남": "전라남도",
    "경북": "경상북도",
    "경남": "경상남도",
    "제주": "제주특별자치도",
}

# Former official names, still found in sources: 강원도 (until 2023-06), 전라북도 (until
# 2024-01), 제주도 (until 2006-07).
_FORMER_LONG_NAMES: dict[str, str] = {"강원도": "강원", "전라북도": "전북", "제주도": "제주"}

SIDO_LONG_TO_SHORT: dict[str, str] = {
    **{long: short for short, long in SIDO_SHORT_TO_LONG.items()},
    **_FORMER_LONG_NAMES,
}

GUGUN: dict[str, tuple[str, ...]] = {
    "서울": (
        "종로구", "중구", "용산구", "성동구", "광진구", "동대문구", "중랑구", "성북구", "강북구",
        "도봉구", "노원구", "은평구", "서대문구", "마포구", "양천구", "강서구", "구로구", "금천구",
        "영등포구", "동작구", "관악구", "서초구", "강남구", "송파구", "강동구",
    ),
    "부산": (
        "중구", "서구", "동구", "영도구", "부산진구", "동래구", "남구", "북구", "해운대구", "사하구",
        "금정구", "강서구", "연제구", "수영구", "사상구", "기장군",
    ),
    "대구": ("중구", "동구", "서구", "남구", "북구", "수성구", "달서구", "달성군", "군위군"),
    "인천": ("중구", "동구", "미추홀구", "연수구", "남동구", "부평구", "계양구", "서구", "강화군", "옹진군"),
    "광주": ("동구", "서구", "남구", "북구", "광산구"),
    "대전": ("동구", "중구", "서구", "유성구", "대덕구"),
    "울산": ("중구", "남구", "동구", "북구", "울주군"),
    "세종": ("세종시",),
    "경기": (
        "수원시", "성남시", "의정부시", "안양시", "부천시", "광명시", "평택시", "동두천시", "안산시",
        "고양시", "과천시", "구리시", "남양주시", "오산시", "시흥시", "군포시", "의왕시", "하남시",
        "용인시", "파주시", "이천시", "안성시", "김포시", "화성시", "광주시", "양주시", "포천시",
        "여주시", "연천군", "가평군", "양평군",
    ),
    "강원": (
        "춘천시", "원주시", "강릉시", "동해시", "태백시", "속초시", "삼척시", "홍천군", "횡성군",
        "영월군", "평창군", "정선군", "철원군", "화천군", "양구군", "인제군", "고성군", "양양군",
    ),
    "충북": (
        "청주시", "충주시", "제천시", "보은군", "옥천군", "영동군", "증평군", "진천군", "괴산군",
        "음성군", "단양군",
    ),
    "충남": (
        "천안시", "공주시", "보령시", "아산시", "서산시", "논산시", "계룡시", "당진시", "금산군",
        "부여군", "서천군", "청양군", "홍성군", "예산군", "태안군",
    ),
    "전북": (
        "전주시", "군산시", "익산시", "정읍시", "남원시", "김제시", "완주군", "진안군", "무주군",
        "장수군", "임실군", "순창군", "고창군", "부안군",
    ),
    "전남": (
        "목포시", "여수시", "순천시", "나주시", "광양시", "담양군", "곡성군", "구례군", "고흥군",
        "보성군", "화순군", "장흥군", "강진군", "해남군", "영암군", "무안군", "함평군", "영광군",
        "장성군", "완도군", "진도군", "신안군",
    ),
    "경북": (
        "포항시", "경주시", "김천시", "안동시", "구미시", "영주시", "영천시", "상주시", "문경시",
        "경산시", "의성군", "청송군", "영양군", "영덕군", "청도군", "고령군", "성주군", "칠곡군",
        "예천군", "봉화군", "울진군", "울릉군",
    ),
    "경남": (
        "창원시", "진주시", "통영시", "사천시", "김해시", "밀양시", "거제시", "양산시", "의령군",
        "함안군", "창녕군", "고성군", "남해군", "하동군", "산청군", "함양군", "거창군", "합천군",
    ),
    "제주": ("제주시", "서귀포시"),
}

# Non-autonomous gu (일반구) of the large cities, accepted after the city's name.
CITY_DISTRICTS: dict[str, tuple[str, ...]] = {
    "수원시": ("장안구", "권선구", "팔달구", "영통구"),
    "성남시": ("수정구", "중원구", "분당구"),
    "안양시": ("만안구", "동안구"),
    "부천시": ("원미구", "소사구", "오정구"),
    "안산시": ("상록구", "단원구"),
    "고양시": ("덕양구", "일산동구", "일산서구"),
    "용인시": ("처인구", "기흥구", "수지구"),
    "청주시": ("상당구", "서원구", "흥덕구", "청원구"),
    "천안시": ("동남구", "서북구"),
    "전주시": ("완산구", "덕진구"),
    "포항시": ("남구", "북구"),
    "창원시": ("의창구", "성산구", "마산합포구", "마산회원구", "진해구"),
}

# Names a source may still use for a district that moved or was renamed: 군위군 moved from
# 경북 to 대구 in 2023-07; 인천 남구 became 미추홀구 in 2018-07. Sejong rows often repeat the
# sido's name as their gugun.
_OTHER_ACCEPTED: dict[str, tuple[str, ...]] = {
    "경북": ("군위군",),
    "인천": ("남구",),
    "세종": ("세종", "세종특별자치시"),
}

# (lat_min, lat_max, lon_min, lon_max), WGS84, rough.
SIDO_BOUNDS: dict[str, tuple[float, float, float, float]] = {
    "서울": (37.42, 37.70, 126.77, 127.18),
    "부산": (34.88, 35.39, 128.76, 129.31),
    "대구": (35.61, 36.32, 128.35, 128.84),
    "인천": (36.92, 37.98, 124.60, 126.79),
    "광주": (35.06, 35.25, 126.65, 127.01),
    "대전": (36.19, 36.49, 127.25, 127.55),
    "울산": (35.33, 35.72, 128.97, 129.46),
    "세종": (36.41, 36.73, 127.14, 127.40),
    "경기": (36.90, 38.29, 126.38, 127.85),
    "강원": (37.03, 38.61, 127.10, 129.35),
    "충북": (36.01, 37.26, 127.28, 128.65),
    "충남": (35.98, 37.06, 125.98, 127.64),
    "전북": (35.29, 36.15, 125.95, 127.91),
    "전남": (33.90, 35.50, 125.06, 127.89),
    "경북": (35.58, 37.55, 128.00, 131.87),
    "경남": (34.46, 35.91, 127.58, 129.21),
    "제주": (33.11, 33.96, 126.15, 126.98),
}

_ACCEPTED_GUGUN: dict[str, frozenset[str]] = {
    short: frozenset(names) | frozenset(_OTHER_ACCEPTED.get(short, ())) for short, names in GUGUN.items()
}


def short_sido(name: str) -> str | None:
    """The short name (서울) of a sido given in any form (서울특별시, 서울, 강원도), or None."""
    name = name.strip()
    if name in SIDO_SHORT_TO_LONG:
        return name
    return SIDO_LONG_TO_SHORT.get(name)


def long_sido(name: str) -> str | None:
    """The current official name (강원특별자치도) of a sido given in any form, or None."""
    short = short_sido(name)
    return None if short is None else SIDO_SHORT_TO_LONG[short]


def gugun_belongs(sido: str, gugun: str) -> bool:
    """Whether `gugun` is a district of `sido` (long, short or former sido name)."""
    short = short_sido(sido)
    if short is None:
        return False
    name = " ".join(gugun.split())
    accepted = _ACCEPTED_GUGUN[short]
    if name in accepted:
        return True
    city, _, district = name.partition(" ")
    return city in accepted and district in CITY_DISTRICTS.get(city, ())


def address_region(address: str) -> tuple[str | None, str | None]:
    """(sido as written, gugun) read from the start of a full address, for the operations that
    send no `sido`/`gugun` fields (`서울특별시 종로구 …` → (서울특별시, 종로구)); `수원시 장안구`
    stays one gugun; Sejong, which has no districts, gets its one entry. (None, None) when the
    address does not start with a sido."""
    words = address.split()
    if not words or short_sido(words[0]) is None:
        return None, None
    sido, short = words[0], short_sido(words[0])
    assert short is not None
    if len(words) >= 3 and gugun_belongs(sido, f"{words[1]} {words[2]}") and words[2] in CITY_DISTRICTS.get(
            words[1], ()):
        return sido, f"{words[1]} {words[2]}"
    if len(words) >= 2 and gugun_belongs(sido, words[1]):
        return sido, words[1]
    districts = GUGUN.get(short, ())
    return sido, districts[0] if len(districts) == 1 else None
