// Package sysfs reads the battery of a board with a fuel gauge or a PMIC
// through Linux's power supply class, /sys/class/power_supply: an X-Powers
// AXP20x/AXP22x PMIC (Orange Pi, Pine64, CHIP), a TI bq27xxx fuel gauge
// (battery HATs, handhelds), or any other chip with a kernel driver.
//
// # The sysfs format
//
// Each supply is a directory named after it (e.g. axp20x-battery,
// bq27441-0, axp20x-usb) holding one value per file, each ending in a
// newline:
//
//	type          Battery, Mains, USB, Wireless, UPS
//	scope         Device for a peripheral's own battery (a wireless
//	              keyboard's), which is never the unit's; System or absent
//	present       1 or 0: whether the battery is connected
//	online        1 or 0: whether a Mains/USB/... supply has power
//	status        Charging, Discharging, Full, Not charging, Unknown
//	voltage_now   microvolts (voltage_avg if absent)
//	current_now   microamps (current_avg if absent); sign: see below
//	power_now     microwatts (power_avg if absent)
//	capacity      state of charge, percent
//	temp          tenths of a degree Celsius
//	health        Good, Overheat, Dead, Cold, ...
//
// Which files a supply has depends on its driver; reading one can also fail
// while the chip is busy or the battery absent (EIO, ENODATA). A file that
// is missing, unreadable or does not hold a number gives an unknown (nil)
// value, never zero.
//
// # Mapping into power.Reading
//
//   - voltage_now → BatteryV (volts)
//   - current_now → BatteryA (amps, positive while charging); when the
//     driver gives no current, power_now / voltage_now
//   - capacity → SOCPercent
//   - status → ChargeState: "charging", "discharging", "full",
//     "not charging" (external power present, charging held off, e.g. by
//     temperature), "" for Unknown
//
// Temperature, health, and whether the board's other supplies (mains, USB,
// a solar charger) are online, which power.Reading has no fields for, are
// in Status.
//
// # The sign of current_now
//
// The kernel's ABI says current_now is negative while discharging, but
// drivers differ: some older bq27xxx drivers report the gauge's register
// as is, and several PMIC drivers report a magnitude. Config.CurrentSign
// says how to read it: SignAuto (the default) trusts the sign unless the
// supply's own status contradicts it (Discharging with a positive current,
// Charging with a negative one), when it follows the status; SignABI
// trusts the sign; SignInverted flips it.
package sysfs
