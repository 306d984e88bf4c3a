"""The bot_filter preprocessor."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from tracker.event import Event
from tracker.preprocessors.bots import DEFAULT_PATTERNS, BotFilter, BotFilterOptions

BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/124.0.6367.155 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html)",
    "AdsBot-Google (+http://www.google.com/adsbot.html)",
    "Mediapartners-Google",
    "Mozilla/5.0 (compatible; Google-InspectionTool/1.0)",
    "Mozilla/5.0 (compatible; GoogleOther)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
    "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
    "Twitterbot/1.0",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "TelegramBot (like TwitterBot)",
    "WhatsApp/2.23.20.0 A",
    "WhatsApp/2.2403.2 i",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
    "Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)",
    "Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) Mobile "
    "Safari/537.36 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile "
    "Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; "
    "+claudebot@anthropic.com)",
    "CCBot/2.0 (https://commoncrawl.org/faq/)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; "
    "+https://perplexity.ai/perplexitybot)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Amazonbot/0.1; "
    "+https://developer.amazon.com/support/amazonbot) Chrome/119.0.6045.214 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/100.0.4896.127 Safari/537.36 Edg/100.0.1185.39 BingPreview/1.0b",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.6367.60 Safari/537.36",
    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 "
    "Safari/538.1",
    "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
    # Puppeteer, Playwright and Selenium send HeadlessChrome by default; these
    # are the names people put in a custom user agent.
    "Mozilla/5.0 (X11; Linux x86_64) Puppeteer/22.6.0",
    "Playwright/1.43.0",
    "Selenium/4.19.0 (python linux)",
    "python-requests/2.31.0",
    "Python-urllib/3.11",
    "python-httpx/0.27.0",
    "Python/3.11 aiohttp/3.9.5",
    "Go-http-client/1.1",
    "Go-http-client/2.0",
    "curl/8.5.0",
    "PycURL/7.45.3 libcurl/8.5.0 OpenSSL/3.0.13 zlib/1.3",
    "Wget/1.21.4",
    "libwww-perl/6.72",
    "Java/17.0.9",
    "okhttp/4.12.0",
    "Apache-HttpClient/4.5.14 (Java/17.0.9)",
    "axios/1.6.8",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "Scrapy/2.11.1 (+https://scrapy.org)",
    "PostmanRuntime/7.37.3",
    "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "Mozilla/5.0 (compatible; pingbot/2.0; +http://www.pingdom.com/)",
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Mozilla/5.0 (compatible; StatusCake)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Site24x7",
    "Mozilla/5.0 (compatible; SiteMonitor/1.0)",
    "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
    "ia_archiver (+http://www.alexa.com/site/help/webmasters; crawler@alexa.com)",
]

BROWSERS = [
    # Chrome: Windows, macOS, Android, iOS.
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
    # Firefox: Windows, Linux, Android, iOS.
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
    # Safari: macOS, iPhone, iPad.
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Mobile/15E148 Safari/604.1",
    # Edge: Windows, Android.
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.0.0",
    # Samsung Internet, Opera, Yandex Browser.
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S928B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
    # In-app WebViews: Android WebView, Facebook, Instagram, TikTok, WeChat.
    "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 "
    "[FB_IAB/FB4A;FBAV/460.0.0.48.109;]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.38.109;FBBV/597382442;FBDV/iPhone15,2;"
    "FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/600118024]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 Instagram 327.0.2.30.93 (iPhone15,2; iOS 17_4; en_US; en; "
    "scale=3.00; 1179x2556; 590937422)",
    "Mozilla/5.0 (Linux; Android 12; SM-A525F Build/SP1A.210812.016; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 trill_330804 "
    "JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/trill app_version/33.8.4 ByteLocale/en "
    "ByteFullLocale/en Region/US Spark/1.4.8.3-bugfix AppVersion/33.8.4 "
    "BytedanceWebview/d8a21c6",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN",
    # CUBOT Android phones: the model name contains "bot".
    "Mozilla/5.0 (Linux; Android 9; CUBOT_X19 Build/PPR1.180610.011) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/96.0.4664.45 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; CUBOT NOTE 20 PRO Build/QP1A.190711.020; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; CUBOT KINGKONG 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    # Android apps' own HTTP stack (real devices, not automation).
    "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP1A.240405.002)",
]


def bot_filter(**options) -> BotFilter:
    return BotFilter("bots", BotFilterOptions().load(options))


def event(user_agent: str | None = "x") -> Event:
    return Event(type="impression", path="imp", context={"user_agent": user_agent})


def test_default_list_is_a_few_dozen_patterns():
    assert 30 <= len(DEFAULT_PATTERNS) <= 60


@pytest.mark.parametrize("user_agent", BOTS)
def test_bots_are_flagged(user_agent):
    result = bot_filter().process(event(user_agent))
    assert result is not None
    assert result.dimensions == {"is_bot": True}


@pytest.mark.parametrize("user_agent", BROWSERS)
def test_browsers_are_not_flagged(user_agent):
    result = bot_filter().process(event(user_agent))
    assert result is not None
    assert result.dimensions == {"is_bot": False}


def test_flag_keeps_the_other_dimensions():
    e = event("curl/8.5.0")
    e.dimensions["campaign_id"] = "c1"
    assert bot_filter().process(e).dimensions == {"campaign_id": "c1", "is_bot": True}


def test_drop_returns_none_for_a_bot():
    assert bot_filter(action="drop").process(event(BOTS[0])) is None


def test_drop_passes_a_browser_unchanged():
    e = event(BROWSERS[0])
    assert bot_filter(action="drop").process(e) is e
    assert e.dimensions == {}


@pytest.mark.parametrize("context", [{}, {"user_agent": None}, {"user_agent": ""}])
@pytest.mark.parametrize("empty_is_bot", [True, False])
def test_empty_user_agent_per_option(context, empty_is_bot):
    e = Event(type="impression", path="imp", context=context)
    result = bot_filter(empty_user_agent_is_bot=empty_is_bot).process(e)
    assert result.dimensions == {"is_bot": empty_is_bot}


def test_empty_user_agent_is_dropped_by_default_with_drop():
    assert bot_filter(action="drop").process(event(None)) is None


def test_empty_user_agent_passes_drop_when_not_a_bot():
    f = bot_filter(action="drop", empty_user_agent_is_bot=False)
    assert f.process(event("")) is not None


def test_patterns_replace_the_default_list():
    f = bot_filter(patterns=[r"^InternalProbe/\d"])
    assert f.is_bot("internalprobe/2.0")
    assert not f.is_bot("Mozilla/5.0 (compatible; Googlebot/2.1)")


def test_extra_patterns_extend_the_default_list():
    f = bot_filter(extra_patterns=["acme-checker"])
    assert f.is_bot("ACME-Checker/1.0")
    assert f.is_bot("Mozilla/5.0 (compatible; Googlebot/2.1)")
    assert not f.is_bot(BROWSERS[0])


def test_extra_patterns_extend_replaced_patterns():
    f = bot_filter(patterns=["probe"], extra_patterns=["checker"])
    assert f.is_bot("Probe/1") and f.is_bot("Checker/1")
    assert not f.is_bot("curl/8.5.0")


def test_dimension_name():
    result = bot_filter(dimension="suspected_bot").process(event("Wget/1.21.4"))
    assert result.dimensions == {"suspected_bot": True}


def test_defaults():
    assert BotFilterOptions().load({}) == {
        "action": "flag",
        "patterns": None,
        "extra_patterns": [],
        "dimension": "is_bot",
        "parser": True,
        "empty_user_agent_is_bot": True,
    }


def errors(options: dict) -> dict:
    with pytest.raises(ValidationError) as info:
        BotFilterOptions().load(options)
    return info.value.messages


def test_bad_regex_is_reported_on_its_key():
    assert errors({"patterns": ["bot", "spider", "(unclosed", "ok"]}) == {
        "patterns": {
            2: ["Not a valid regular expression: missing ), unterminated subpattern at position 0."]
        }
    }


def test_bad_extra_regex_is_reported_on_its_key():
    assert errors({"extra_patterns": ["[z-a]", "ok", "a{2,1}"]}) == {
        "extra_patterns": {
            0: ["Not a valid regular expression: bad character range z-a at position 1."],
            2: [
                "Not a valid regular expression: min repeat greater than max repeat at position 2."
            ],
        }
    }


def test_inline_global_flags_are_rejected():
    # Valid alone, but not inside the combined alternation.
    assert errors({"extra_patterns": ["(?i)foo"]}) == {
        "extra_patterns": {
            0: ["Not a valid regular expression: global flags not at the start of the expression."]
        }
    }


@pytest.mark.parametrize("pattern", ["", "bot|", "x*"])
def test_patterns_matching_everything_are_rejected(pattern):
    assert errors({"extra_patterns": [pattern]}) == {
        "extra_patterns": {0: ["Matches the empty string, so it would match every user agent."]}
    }


def test_patterns_that_cannot_share_one_expression_are_rejected():
    assert errors({"patterns": ["(?P<v>a)b", "(?P<v>c)d"]}) == {
        "_schema": [
            "Patterns cannot be combined into one expression: redefinition of group name "
            "'v' as group 2; was group 1."
        ]
    }


def test_other_option_errors():
    assert errors(
        {
            "action": "block",
            "patterns": [],
            "dimension": "Is-Bot",
            "empty_user_agent_is_bot": "maybe",
            "color": "red",
        }
    ) == {
        "action": ["Must be one of: flag, drop."],
        "patterns": ["Shorter than minimum length 1."],
        "dimension": ["Must match ^[a-z][a-z0-9_]*$."],
        "empty_user_agent_is_bot": ["Not a valid boolean."],
        "color": ["Unknown field."],
    }
