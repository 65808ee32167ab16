"""Small widgets and layouts shared by every room of ui/."""
