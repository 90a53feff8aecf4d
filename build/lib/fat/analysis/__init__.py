"""Reading finished training runs and turning them into figures and a report page."""
