// Package controllers holds the reconcilers of offering-operator.
package controllers
