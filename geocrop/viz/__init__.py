"""The offline folium page and plots."""
