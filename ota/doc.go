// Package ota will install new versions of the agent over the air: signed
// releases, an A/B install with a health-checked trial and automatic
// rollback, as a persisted state machine. Nothing here is implemented yet;
// until it is, agents are upgraded by installing a new package on the unit
// (docs/operations.md).
package ota
