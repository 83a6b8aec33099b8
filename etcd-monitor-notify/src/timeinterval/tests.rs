// Cases from Alertmanager 0.25's timeinterval/timeinterval_test.go: the intervals (written here in
// their YAML form), and instants Alertmanager says are inside or outside them.
use super::*;

fn at(s: &str) -> DateTime<FixedOffset> {
    // Go's time.RFC822Z: "02 Jan 06 15:04 -0700".
    DateTime::parse_from_str(s, "%d %b %y %H:%M %z").unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn interval(yaml: &str) -> TimeInterval {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

#[test]
fn alertmanagers_containment_cases() {
    // Alertmanager builds this one in Go, past the YAML checks ('-31:31' is refused in a file).
    let clamped = TimeInterval {
        months: Some(vec![MonthRange(InclusiveRange { begin: 6, end: 6 })]),
        days_of_month: Some(vec![DayOfMonthRange(InclusiveRange {
            begin: -31,
            end: 31,
        })]),
        ..TimeInterval::default()
    };
    for t in ["30 Jun 20 00:00 +0000", "01 Jun 20 00:00 +0000"] {
        assert!(clamped.contains(at(t)), "{t}");
    }
    for t in ["31 May 20 00:00 +0000", "1 Jul 20 00:00 +0000"] {
        assert!(!clamped.contains(at(t)), "{t}");
    }
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "{}",
            &["02 Jan 06 15:04 +0000", "03 Jan 07 10:04 +0000", "04 Jan 06 09:04 +0000"],
            &[],
        ),
        (
            "{times: [{start_time: '09:00', end_time: '17:00'}], weekdays: ['monday:friday']}",
            &["04 May 20 15:04 +0000", "05 May 20 10:04 +0000", "09 Jun 20 09:04 +0000"],
            &["03 May 20 15:04 +0000", "04 May 20 08:59 +0000", "05 May 20 05:00 +0000"],
        ),
        (
            "{days_of_month: ['4:6'], months: ['april'], years: ['2020']}",
            &["04 Apr 20 15:04 +0000", "05 Apr 20 00:00 +0000", "06 Apr 20 23:05 +0000"],
            &[
                "03 May 18 15:04 +0000",
                "03 Apr 20 23:59 +0000",
                "04 Jun 20 23:59 +0000",
                "06 Apr 19 23:59 +0000",
                "07 Apr 20 00:00 +0000",
            ],
        ),
        (
            "{days_of_month: ['-3:-1']}",
            &[
                "31 Jan 20 15:04 +0000",
                "30 Jan 20 15:04 +0000",
                "29 Jan 20 15:04 +0000",
                "30 Jun 20 00:00 +0000",
                "29 Feb 20 23:05 +0000",
            ],
            &[
                "03 May 18 15:04 +0000",
                "27 Jan 20 15:04 +0000",
                "03 Apr 20 23:59 +0000",
                "04 Jun 20 23:59 +0000",
                "06 Apr 19 23:59 +0000",
                "07 Apr 20 00:00 +0000",
                "01 Mar 20 00:00 +0000",
            ],
        ),
        (
            "{times: [{start_time: '09:00', end_time: '17:00'}], weekdays: ['monday:friday'], location: Australia/Sydney}",
            &["06 Apr 21 13:00 +1000"],
            &["06 Apr 21 13:00 +0000"],
        ),
        (
            "{times: [{start_time: '09:00', end_time: '17:00'}], weekdays: ['monday:friday'], months: ['november'], location: Australia/Sydney}",
            &["01 Nov 21 09:00 +1100", "31 Oct 21 22:00 +0000"],
            &["31 Oct 21 21:00 +0000"],
        ),
        (
            "{weekdays: ['monday:friday'], times: [{start_time: '09:00', end_time: '17:00'}]}",
            &["08 Jul 20 09:00 +0000", "08 Jul 20 16:59 +0000"],
            &["08 Jul 20 05:00 +0000", "08 Jul 20 08:59 +0000"],
        ),
    ];
    for (yaml, inside, outside) in cases {
        let ti = interval(yaml);
        for t in *inside {
            assert!(ti.contains(at(t)), "{yaml} should contain {t}");
        }
        for t in *outside {
            assert!(!ti.contains(at(t)), "{yaml} should not contain {t}");
        }
    }
}

#[test]
fn alertmanagers_parsing_cases() {
    let ok = |y: &str| interval(&format!("{{times: [{y}]}}")).times.unwrap()[0];
    assert_eq!(
        ok("{start_time: '00:00', end_time: '24:00'}"),
        TimeRange {
            start_minute: 0,
            end_minute: 1440
        }
    );
    assert_eq!(
        ok("{start_time: '01:35', end_time: '17:39'}"),
        TimeRange {
            start_minute: 95,
            end_minute: 1059
        }
    );
    for (yaml, message) in [
        (
            "{times: [{start_time: '17:31', end_time: '17:31'}]}",
            "start time cannot be equal or greater than end time",
        ),
        (
            "{times: [{start_time: '12:30', end_time: '24:01'}]}",
            "couldn't parse timestamp 24:01, invalid format",
        ),
        (
            "{times: [{start_time: '09:30', end_time: '07:41'}]}",
            "start time cannot be equal or greater than end time",
        ),
        (
            "{times: [{start_time: '14:03'}]}",
            "both start and end times must be provided",
        ),
        (
            "{weekdays: ['friday:monday']}",
            "start day cannot be before end day",
        ),
        (
            "{weekdays: ['blurgsday:flurgsday']}",
            "blurgsday is not a valid weekday",
        ),
        (
            "{days_of_month: ['0']}",
            "0 is not a valid day of the month: out of range",
        ),
        (
            "{days_of_month: ['-1:5']}",
            "end day must be negative if start day is negative",
        ),
        (
            "{days_of_month: ['10:5']}",
            "end day 5 is always before start day 10",
        ),
        (
            "{months: ['december:january']}",
            "end month january is before start month december",
        ),
        ("{months: ['martius']}", "martius is not a valid month"),
        (
            "{years: ['2020:2019']}",
            "end year 2019 is before start year 2020",
        ),
        (
            "{location: 'Mars/Olympus'}",
            "unknown time zone Mars/Olympus",
        ),
    ] {
        let e = serde_yaml::from_str::<TimeInterval>(yaml)
            .expect_err(yaml)
            .to_string();
        assert!(e.contains(message), "{yaml}: {e}");
    }
    // Names are case-insensitive, as in Alertmanager.
    assert_eq!(
        interval("{weekdays: ['Monday:FRIDAY']}").weekdays.unwrap()[0].0,
        InclusiveRange { begin: 1, end: 5 }
    );
}
